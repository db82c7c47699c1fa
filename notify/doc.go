// Package notify tells people what happened: by email (SMTP, always with
// STARTTLS) and by webhook (a JSON POST whose body is signed with
// HMAC-SHA256 in the Custodian-Signature header).
//
// Design: Notify never sends anything itself. It looks up the routes of the
// notification's kind and writes one queue item per recipient (an email
// address or a webhook name) into a bbolt file of its own (data_dir/notify.db,
// not the ledger), in one transaction, before it returns. A worker delivers
// due items one by one; a failed attempt is retried with exponential backoff
// (doubling, capped, jittered) until it succeeds or the item is given up
// after GiveUpAfter. Because the queue is on disk, a restart loses nothing:
// items still pending are sent after the next Open. Delivery is at least
// once: a crash between a successful send and its removal from the queue
// sends that item again.
//
// Each final outcome is recorded on the custody ledger through the daemon's
// recorder: notify.delivered or notify.failed with the kind, the channel and
// the recipient, never the message. Messages are built from metadata only
// (dataset IDs, job names, counts); registry file names appear only when
// notify.include_file_names is true, and record contents never.
package notify
