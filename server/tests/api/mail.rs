//! The outbox: mails wait for a transport that is down, survive a restart, and are sent once; no
//! link rests in it readable, and a display name never adds or changes a recipient.

use crate::helpers::{PASSWORD, TestApp};
use promio_app::api::{Field, LinkKind, LinkState, Problem, Role};
use promio_server::domain::Invalid;
use promio_server::domain::audit::AuditAction;
use promio_server::idm::provisioning::{self, Actor, UserInput};
use promio_server::infra::error::ServiceError;
use promio_server::infra::mail::{CapturedMail, CapturingTransport, MailTransport, Mailer};
use secrecy::SecretString;
use sqlx::Row;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[tokio::test]
async fn a_mail_waits_while_smtp_is_down_and_arrives_after() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.mails.set_down(true);
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    let report = app.deliver().await;
    assert_eq!((report.sent, report.failed), (0, 1));
    assert_eq!(
        app.core.store.outbox_depth(START_NOW).await.unwrap().0,
        1,
        "still queued"
    );
    app.mails.set_down(false);
    assert_eq!(app.deliver().await.sent, 0, "not before its retry time");
    app.clock.advance(30);
    assert_eq!(app.deliver().await.sent, 1);
    assert_eq!(app.mails_to("erika@"), 1);
    assert_eq!(app.core.store.outbox_depth(START_NOW).await.unwrap().0, 0);
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e.action == AuditAction::Mail("registration") && e.outcome == "failure")
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == AuditAction::Mail("registration") && e.outcome == "success")
    );
}

const START_NOW: i64 = crate::helpers::START;

/// A worker's own transport: keeps what that worker sends, and holds its first mail until the
/// other worker has one to send too, so that both hold claimed mails at the same moment.
struct Meeting {
    sent: CapturingTransport,
    both: Arc<tokio::sync::Barrier>,
    met: AtomicBool,
}

#[async_trait::async_trait]
impl MailTransport for Meeting {
    async fn send(&self, message: lettre::Message) -> anyhow::Result<()> {
        if !self.met.swap(true, Ordering::SeqCst) {
            self.both.wait().await;
        }
        self.sent.send(message).await
    }
}

#[tokio::test]
async fn two_workers_never_send_the_same_mail_twice() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    for i in 0..40 {
        app.create_user_with("ACME", &format!("u{i}"), Role::User, None)
            .await;
    }
    // Two instances: each its own mailer and transport, on the same database.
    let both = Arc::new(tokio::sync::Barrier::new(2));
    let worker = || {
        let transport = Arc::new(Meeting {
            sent: CapturingTransport::default(),
            both: Arc::clone(&both),
            met: AtomicBool::new(false),
        });
        let clock: Arc<dyn promio_server::domain::clock::Clock> = Arc::new(app.clock.clone());
        let mailer = Mailer::new(
            app.core.store.clone(),
            clock,
            Arc::clone(&transport) as Arc<dyn MailTransport>,
            "noreply@promio.example".parse().unwrap(),
            &app.core.settings.secret_key,
        );
        (mailer, transport)
    };
    let ((first, first_sent), (second, second_sent)) = (worker(), worker());
    let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        tokio::join!(first.deliver_due(), second.deliver_due())
    })
    .await
    .expect("both workers claimed mails to send");
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 40);
    let (first_sent, second_sent) = (first_sent.sent.mails(), second_sent.sent.mails());
    assert!(
        !first_sent.is_empty() && !second_sent.is_empty(),
        "each worker sent some: {} and {}",
        first_sent.len(),
        second_sent.len()
    );
    assert_eq!((first_sent.len(), second_sent.len()), (a.sent, b.sent));
    let mut recipients: Vec<String> = first_sent
        .into_iter()
        .chain(second_sent)
        .map(|m| m.to)
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 40, "each mail exactly once");
    assert_eq!(app.core.store.outbox_depth(START_NOW).await.unwrap().0, 0);
}

#[tokio::test]
async fn a_claimed_mail_of_a_crashed_worker_is_sent_after_its_lease() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    // A worker claims the mail and dies before sending it.
    let claimed = app
        .core
        .store
        .claim_mails(START_NOW, 120, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(app.deliver().await.sent, 0, "leased to the dead worker");
    app.clock.advance(121);
    assert_eq!(app.deliver().await.sent, 1);
}

/// A row of the outbox as the database holds it.
struct StoredMail {
    recipient: String,
    recipient_name: String,
    subject: String,
    body_text: String,
    body_html: String,
    sealed: i64,
    sent_at: Option<i64>,
}

async fn outbox(app: &TestApp) -> Vec<StoredMail> {
    sqlx::query(
        "SELECT recipient, recipient_name, subject, body_text, body_html, sealed, sent_at
         FROM mail_outbox ORDER BY created_at, id",
    )
    .fetch_all(app.core.store.pool())
    .await
    .expect("read the outbox")
    .into_iter()
    .map(|row| StoredMail {
        recipient: row.get("recipient"),
        recipient_name: row.get("recipient_name"),
        subject: row.get("subject"),
        body_text: row.get("body_text"),
        body_html: row.get("body_html"),
        sealed: row.get("sealed"),
        sent_at: row.get("sent_at"),
    })
    .collect()
}

#[tokio::test]
async fn the_outbox_holds_no_readable_link_and_drops_the_bodies_once_sent() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    let queued = outbox(&app).await;
    assert_eq!(queued.len(), 1);

    let mail = app.mail_to("erika@acme.example").await;
    let token = TestApp::token_of(&mail);
    assert!(mail.raw.contains(&format!("/set-password?token={token}")));

    let row = &queued[0];
    assert_eq!(row.sealed, 1);
    assert_eq!(row.recipient, "erika@acme.example");
    for stored in [
        &row.recipient,
        &row.recipient_name,
        &row.subject,
        &row.body_text,
        &row.body_html,
    ] {
        assert!(!stored.contains(&token), "the token rests in the outbox");
        assert!(
            !stored.contains("set-password"),
            "the link rests in the outbox"
        );
    }
    assert!(!row.body_text.is_empty() && !row.body_html.is_empty());

    let sent = outbox(&app).await;
    assert!(sent[0].sent_at.is_some());
    assert_eq!(
        (sent[0].body_text.as_str(), sent[0].body_html.as_str()),
        ("", "")
    );

    let response = app.call("link", &[("token", token.as_str())]).await;
    assert_eq!(response.status(), 200);
    let state: LinkState = response.json().await.unwrap();
    assert!(
        matches!(
            state,
            LinkState::Valid {
                kind: LinkKind::Registration,
                ..
            }
        ),
        "the mailed link still works: {state:?}"
    );
}

#[tokio::test]
async fn a_plain_mail_queued_before_sealing_is_still_sent_and_then_dropped() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO mail_outbox (id, created_at, recipient, subject, body_text, body_html, kind,
            next_attempt_at)
         VALUES ('from-before', $1, 'Erika Mustermann <erika@acme.example>', 'Old mail',
            'Set it: https://login.example/set-password?token=old', '<p>old</p>', 'registration',
            $1)",
    )
    .bind(START_NOW)
    .execute(app.core.store.pool())
    .await
    .unwrap();

    let report = app.deliver().await;
    assert_eq!((report.sent, report.failed), (1, 0));
    let mail = app.mail_to("erika@acme.example").await;
    assert_eq!(mail.to, "erika@acme.example");
    assert!(mail.raw.contains("set-password?token=old"));
    let row = &outbox(&app).await[0];
    assert_eq!(row.sealed, 0);
    assert_eq!((row.body_text.as_str(), row.body_html.as_str()), ("", ""));
}

/// The mail went to `address` alone: the envelope, and the headers as a mail client reads them.
fn assert_only_recipient(mail: &CapturedMail, address: &str) {
    assert_eq!(mail.to, address, "the envelope's recipients");
    let head = mail
        .raw
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ");
    let mut to = Vec::new();
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        assert!(name != "cc" && name != "bcc", "an added header: {head}");
        if name == "to" {
            to.push(value.trim().to_owned());
        }
    }
    assert_eq!(to.len(), 1, "one To header: {head}");
    let mailboxes: lettre::message::Mailboxes = to[0].parse().expect("a To header that parses");
    let addresses: Vec<String> = mailboxes.into_iter().map(|m| m.email.to_string()).collect();
    assert_eq!(addresses, [address], "{head}");
    assert!(!head.contains("evil.example"), "{head}");
}

fn user_input(
    username: &str,
    first_name: &str,
    last_name: &str,
    password: Option<&str>,
) -> UserInput {
    UserInput {
        company_id: "ACME".into(),
        username: username.into(),
        email: format!("{username}@acme.example"),
        first_name: first_name.into(),
        last_name: last_name.into(),
        role: promio_server::domain::Role::User,
        language: "en".into(),
        password: password.map(|p| SecretString::from(p.to_owned())),
    }
}

#[tokio::test]
async fn a_display_name_never_adds_or_changes_a_recipient() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    // Accepted at input: a name may hold these characters, it is only ever shown.
    provisioning::create_user(
        &app.core,
        Actor::default(),
        user_input(
            "erika",
            "Eve <eve@evil.example>, x",
            "\"Mallory\" <mallory@evil.example>; Bcc: bob@evil.example",
            None,
        ),
    )
    .await
    .expect("create the user");
    let mail = app.mail_to("erika@acme.example").await;
    assert_only_recipient(&mail, "erika@acme.example");

    // Line breaks are refused at input (see below); a row that holds them anyway (written before
    // that check, or by hand) still cannot add a header.
    provisioning::create_user(
        &app.core,
        Actor::default(),
        user_input("max", "Max", "Muster", Some(PASSWORD)),
    )
    .await
    .expect("create the user");
    let max = app.user_id("ACME", "max").await;
    sqlx::query("UPDATE users SET first_name = $1, last_name = $2 WHERE id = $3")
        .bind("\"a\r\nBcc: x@evil.example")
        .bind("b\nCc: y@evil.example\r\n\r\nforged body")
        .bind(&max)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let response = app
        .call(
            "forgot-password",
            &[("company_id", "ACME"), ("username", "max")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let mail = app.mail_to("max@acme.example").await;
    assert_only_recipient(&mail, "max@acme.example");
}

#[tokio::test]
async fn names_with_line_breaks_are_refused_at_input() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    for (first, last, field) in [
        ("a\r\nBcc: x@evil.example", "b", Field::FirstName),
        ("a", "b\nCc: x@evil.example", Field::LastName),
    ] {
        let result = provisioning::create_user(
            &app.core,
            Actor::default(),
            user_input("erika", first, last, None),
        )
        .await;
        assert!(
            matches!(
                &result,
                Err(ServiceError::Invalid(Invalid {
                    field: f,
                    problem: Problem::ControlCharacters,
                })) if *f == field
            ),
            "{result:?}"
        );
    }
    assert!(outbox(&app).await.is_empty(), "no mail for a refused user");
}
