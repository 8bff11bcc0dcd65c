// The suite's SMTP server: accepts every mail on 127.0.0.1 and writes it, parsed, as one JSON file
// per mail into a folder that the fixtures read (see waitForMail in ../fixtures.ts).
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const port = Number(process.env.E2E_SMTP_PORT ?? 2525);
const dir = process.env.E2E_MAIL_DIR ?? path.join(import.meta.dirname, '..', '.mail');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

let count = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onData(stream, session, callback) {
    simpleParser(stream)
      .then((mail) => {
        count += 1;
        const record = {
          to: session.envelope.rcptTo.map((r) => r.address),
          from: session.envelope.mailFrom && session.envelope.mailFrom.address,
          subject: mail.subject ?? '',
          text: mail.text ?? '',
          html: typeof mail.html === 'string' ? mail.html : '',
          receivedAt: new Date().toISOString(),
        };
        const file = path.join(dir, `${Date.now()}-${String(count).padStart(5, '0')}.json`);
        writeFileSync(file, JSON.stringify(record, null, 2));
        callback();
      })
      .catch(callback);
  },
});
server.on('error', (err) => {
  console.error(`smtp sink: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => console.log(`smtp sink listening on 127.0.0.1:${port}, mails in ${dir}`));
