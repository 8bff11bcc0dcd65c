//! Server-rendered pages: labels, language, and access to the logged-in page.

use crate::helpers::TestApp;

#[tokio::test]
async fn the_login_page_has_the_contract_labels_in_english() {
    let app = TestApp::spawn().await;
    for path in ["/", "/login"] {
        let response = app
            .client
            .get(app.url(path))
            .header("accept-language", "en-US,en;q=0.9")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        assert!(html.contains("<html lang=\"en\""), "{path}");
        for label in [
            "Company ID",
            "User name",
            "Password",
            ">OK<",
            "Login with SSO",
            "Forgot your password?",
        ] {
            assert!(html.contains(label), "{path}: {label} missing");
        }
        for id in ["for=\"company_id\"", "for=\"username\"", "for=\"password\""] {
            assert!(html.contains(id), "{path}: label {id} missing");
        }
    }
}

#[tokio::test]
async fn the_login_page_speaks_german_when_asked() {
    let app = TestApp::spawn().await;
    let html = app
        .client
        .get(app.url("/login"))
        .header("accept-language", "de-DE,de;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"de\""));
    for label in [
        "Firmen-ID",
        "Benutzername",
        "Passwort",
        "Mit SSO anmelden",
        "Passwort vergessen?",
    ] {
        assert!(html.contains(label), "{label} missing");
    }
    // The cookie set by the language switch wins over the header.
    let html = app
        .client
        .get(app.url("/login"))
        .header("accept-language", "de-DE")
        .header("cookie", "lang=en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Company ID"));
}

#[tokio::test]
async fn the_logged_in_page_redirects_to_login_without_a_session() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/home"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/login");
}

#[tokio::test]
async fn the_logged_in_page_shows_the_user_and_log_out() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let response = app
        .client
        .get(app.url("/home"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Test alice"), "the name");
    assert!(html.contains("ACME GmbH"));
    assert!(html.contains("Log out"));
    // Logged in, the login page sends the user on.
    let response = app
        .client
        .get(app.url("/login"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/home");
}

#[tokio::test]
async fn unknown_pages_answer_404() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
}
