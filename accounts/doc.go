// Package accounts holds the rules of per-person accounts and four-eyes
// approvals (clauses 五(九)–(十三)) as pure functions over data: roles and
// the one role matrix ([Allowed]), username, password (argon2id, PHC
// strings, the password policy and its blocklist), lockout, TOTP, sessions,
// and the approvals engine ([Request]).
//
// Nothing here stores, sends or logs anything. Methods check a rule and,
// where the rule says so, change the value they were called on (an
// [Account], a [Session], a [Request]); the caller persists the result and
// records it on the ledger in one transaction. Time is always a parameter,
// never read from the clock, so every rule is tested at fixed instants.
// Storage, the CLI, the HTTPS transport and the wiring into
// service.Authorize live elsewhere.
//
// The metrics role mentioned by a later issue is not defined yet.
package accounts
