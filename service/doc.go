// Package service is custodian's service layer: one method per use case
// (run a job, list and show datasets, release, re-pull, verify and export
// the ledger, plan and record a vault scrub, status, and the people's own:
// log in, sessions, passwords, accounts and four-eyes requests), and the
// one place where each rule is applied.
//
// Every method takes the acting person ([Actor]) and, where data is
// touched, names the resource. It then, in this order:
//
//  1. asks the one authorization function ([Authorize]) whether the actor
//     may perform the action on the resource: one role matrix, failing
//     closed, and the unit border;
//  2. applies the custody rules (the transition table in package audit);
//  3. appends the ledger events through one path ([Service.Record], or a
//     single ledger transaction for a state change and its event).
//
// A refusal by either rule is itself recorded (audit.EvAccessRefused) and
// returned as an error carrying a stable code ([ErrForbidden],
// [ErrConflict], ...), which crosses the API as RFC 9457 problem details and
// comes back out of the client as an error that errors.Is recognises.
//
// An actor is an authenticated person: [Service.Authenticate] finds the
// account behind a session token (sessions live in memory, keyed by the
// token's SHA-256). Accounts and requests are records in the ledger's file,
// changed in the same transaction as the events that record them.
//
// Transports (the Unix socket and HTTPS) stay thin: decode, call one
// method, encode. The types they exchange ([DatasetView],
// [EventView], ...) are separate from the ledger's types, so the ledger
// format can stay a contract while the API evolves.
package service
