-- Wrong second-factor codes given with a password-reset link: after a few, the link is void, so
-- whoever reads the victim's mailbox cannot keep guessing codes through one link.
ALTER TABLE link_tokens ADD COLUMN code_failures BIGINT NOT NULL DEFAULT 0;
