//! The fixed user table of the example authorizers (`callout_service`,
//! `http_authorizer`): who may log in, into which account, with what
//! permissions. A stand-in for a real identity system.

/// One user.
pub struct User {
    pub name: &'static str,
    pub password: &'static str,
    pub account: &'static str,
    pub publish: &'static [&'static str],
    pub subscribe: &'static [&'static str],
}

const USERS: &[User] = &[
    User {
        name: "alice",
        password: "alice-pw",
        account: "APP",
        publish: &["app.>", "_INBOX.>"],
        subscribe: &["app.>", "_INBOX.>"],
    },
    User { name: "bob", password: "bob-pw", account: "APP", publish: &["_INBOX.>"], subscribe: &["app.>", "_INBOX.>"] },
];

/// The user with this name and password.
pub fn find(name: &str, password: &str) -> Option<&'static User> {
    USERS.iter().find(|u| u.name == name && u.password == password)
}
