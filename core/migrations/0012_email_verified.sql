-- When the user's email address was last shown to be theirs, or vouched for by the platform:
-- a password set through a link mailed to it, a login through the company's identity provider
-- with it, or a user made at the command line with a password. NULL: not shown, such as an
-- address a client's administrator entered or changed since. The OpenID Provider's
-- `email_verified` claim says whether it is set, so that no application takes an address an
-- administrator of one company typed for one that another company's people own.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;

-- The address (its key, lower case) a link was mailed to: a password set through the link shows
-- that address to be the user's only while it is still the user's. NULL for links made before.
ALTER TABLE link_tokens ADD COLUMN sent_to_key TEXT;

-- Existing users: those who began with a password or through their identity provider were shown
-- or vouched for then (a registration link, the command line, the provider), unless an
-- administrator changed the address afterwards and no password was set since. Until now only a
-- link or the command line's creation set a password, so `password_changed_at` after the change
-- means a link mailed to the new address was used. (Changes older than the audit log's retention
-- are no longer known.) Invited users, and users who never logged in, are not verified yet.
UPDATE users SET email_verified_at = COALESCE(password_changed_at, created_at)
WHERE status <> 'invited' AND (password_hash IS NOT NULL OR sso_subject IS NOT NULL);
UPDATE users SET email_verified_at = NULL
WHERE EXISTS (
    SELECT 1 FROM audit_events changed
    WHERE changed.subject_user_id = users.id AND changed.action = 'user.email_changed'
      AND (users.password_changed_at IS NULL
           OR users.password_changed_at <= changed.created_at));
