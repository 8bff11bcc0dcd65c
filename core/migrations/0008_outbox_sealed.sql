-- Mail bodies hold live links. From now on they are stored sealed (AES-256-GCM with a key derived
-- from SECRET_KEY; sealed = 1) and emptied once the mail is sent. Rows queued before this migration
-- keep their plain bodies (sealed = 0) and are still sent; those already sent lose them now.
ALTER TABLE mail_outbox ADD COLUMN sealed BIGINT NOT NULL DEFAULT 0;

-- The recipient's display name, apart from the address in recipient: a name is never parsed as
-- part of an address, so it cannot add or change a recipient or a header. Rows from before hold
-- "Name <address>" in recipient and an empty name here.
ALTER TABLE mail_outbox ADD COLUMN recipient_name TEXT NOT NULL DEFAULT '';

UPDATE mail_outbox SET body_text = '', body_html = '' WHERE sent_at IS NOT NULL;
