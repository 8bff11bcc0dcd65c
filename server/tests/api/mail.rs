//! The outbox: mails wait for a transport that is down, survive a restart, and are sent once.

use crate::helpers::TestApp;
use promio_app::api::Role;
use promio_server::mail::{CapturingTransport, MailTransport, Mailer};
use std::sync::Arc;

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
            .any(|e| e.action == "mail.registration" && e.outcome == "failure")
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "mail.registration" && e.outcome == "success")
    );
}

const START_NOW: i64 = crate::helpers::START;

#[tokio::test]
async fn two_workers_never_send_the_same_mail_twice() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    for i in 0..40 {
        app.create_user_with("ACME", &format!("u{i}"), Role::User, None)
            .await;
    }
    // A second instance: its own mailer and transport on the same database.
    let other = Arc::new(CapturingTransport::default());
    let transport: Arc<dyn MailTransport> = other.clone();
    let clock: Arc<dyn promio_server::clock::Clock> = Arc::new(app.clock.clone());
    let second = Mailer::new(
        app.core.store.clone(),
        clock,
        transport,
        "noreply@promio.example".parse().unwrap(),
    );
    let (a, b) = tokio::join!(app.core.mailer.deliver_due(), second.deliver_due());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 40);
    let mut recipients: Vec<String> = app
        .mails
        .mails()
        .into_iter()
        .chain(other.mails())
        .map(|m| m.to)
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 40, "each mail exactly once");
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
