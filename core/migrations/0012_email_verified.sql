-- When the user's email address was last shown to be theirs, or vouched for by the platform:
-- a password set through a link mailed to it, a login through the company's identity provider
-- with it, or a user made at the command line with a password. NULL: not shown, such as an
-- address a client's administrator entered or changed since. The OpenID Provider's
-- `email_verified` claim says whether it is set, so that no application takes an address an
-- administrator of one company typed for one that another company's people own.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;

-- Existing users: those who can log in were shown or vouched for when they began (a registration
-- link, the command line, their identity provider), unless an administrator changed the address
-- afterwards and no link mailed to the new one was used since. Invited users are not yet. The
-- time is that of the last link used, else when the user was made.
UPDATE users SET email_verified_at = COALESCE(
    (SELECT MAX(used.used_at) FROM link_tokens used WHERE used.user_id = users.id),
    created_at)
WHERE status <> 'invited';
UPDATE users SET email_verified_at = NULL
WHERE EXISTS (
    SELECT 1 FROM audit_events changed
    WHERE changed.subject_user_id = users.id AND changed.action = 'user.email_changed'
      AND NOT EXISTS (
          SELECT 1 FROM link_tokens used
          WHERE used.user_id = users.id AND used.used_at IS NOT NULL
            AND used.used_at > changed.created_at));
