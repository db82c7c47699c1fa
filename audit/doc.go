// Package audit implements custodian's custody ledger: an append-only,
// tamper-evident record of who did what to which dataset, kept in a single
// bbolt file and meant to be trusted by auditors for years.
//
// # Design
//
// Every [Event] is encoded canonically (encoding/json of the struct, fields
// in declaration order, map keys sorted) and that byte string is a leaf of
// an RFC 6962 Merkle tree maintained with [golang.org/x/mod/sumdb/tlog].
// Each read-write transaction that appends events ends, inside the same
// bbolt transaction, by signing a checkpoint of the new tree (a
// [golang.org/x/mod/sumdb/note] over [tlog.FormatTree], Ed25519), so the
// events, the tree and its signature are always committed together.
//
// Besides the events the file holds derived indexes (current dataset
// state, remote file to dataset, dataset timeline). They exist for speed
// only: [Verify] recomputes all of them, and the whole tree, from the leaf
// bytes and reports the first entry that does not match. Checkpoints kept
// outside the file (for example printed in an audit report) let a later
// [Verify] prove that the log still contains everything they covered, which
// is the only defence against a rollback to an older, validly signed state.
// A verifier key taken from the ledger itself proves internal consistency
// only; auditors should pass the key they hold independently.
//
// Events carry metadata only (names, sizes, hashes, counts, states), never
// record contents.
//
// Verify re-encodes events with the running toolchain's encoding/json. Should
// a future Go release change that encoding, untouched events would be
// reported as "noncanonical" while their hashes still match: a toolchain
// issue, not tampering.
//
// # File layout
//
// All integers are unsigned 64-bit big-endian.
//
//	bucket    key                                     value
//	events    event index                             canonical event JSON (Merkle leaf data)
//	hashes    tlog stored-hash index                  32-byte hash (tlog.StoredHashes)
//	datasets  dataset ID                              JSON of the dataset's current state
//	remote    source + "\x00" + remote path           dataset ID recorded for that file (the latest
//	                                                  delivery: a dataset whose supersedes names the
//	                                                  recorded one takes the entry over)
//	timeline  dataset ID + "\x00" + event index       empty
//	once      once key (Details["once_key"])          index of the one event carrying it
//	dataset_time  received time + dataset ID      job, state, purpose (length-prefixed)
//	meta      "format"                                "custodian-ledger/1"
//	          "size"                                  number of events
//	          "checkpoint"                            signed note of the tree of that size
//	          "verifier_key"                          note verifier key of the signing key
//
// Dataset IDs and sources may not contain NUL bytes, so index keys are
// unambiguous, and a timeline prefix scan returns one dataset's events in
// order.
//
// The signing key is fixed for the lifetime of a ledger file: the verifier
// key is recorded at the first [Ledger.Update] and every later update must
// be signed by the same key.
package audit
