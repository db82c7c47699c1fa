// Package proof holds custodian's portable proofs: one ledger event with
// its inclusion proof, and a consistency proof between two signed
// checkpoints. Each is a small JSON file an auditor keeps, and checks
// offline with nothing but an RFC 6962 implementation and an Ed25519 note
// verifier (docs/auditing.md describes both formats byte by byte).
//
// # Design
//
// A proof file carries everything it needs: the signed checkpoint (a
// golang.org/x/mod/sumdb/note whose text is the C2SP tlog-checkpoint
// body), the verifier key, and the RFC 6962 audit path (inclusion) or
// consistency path as base64 hashes. [Check] trusts nothing in the file but
// the mathematics: the checkpoint's signature, the path to its root, and,
// when the caller gives one, that the file's verifier key is the key the
// auditor holds (otherwise the file proves only its own consistency, and
// the result says so).
//
// Files are written in one canonical form ([Encode]: two-space indented
// JSON, keys in a fixed order, a final newline) and [Decode] accepts only
// that form, and only canonical base64 in signature lines, so that a file
// which checks is byte for byte the file that was written: changing any
// byte makes [Check] fail, even where JSON or base64 would tolerate the
// change (letter case of a key, white space, unused base64 bits).
//
// The package also keeps checkpoints on disk ([KeepCheckpoint],
// [ListKept]: checkpoint-<size>.txt, written by the daemon on a schedule)
// and adds an auditor's own cosignature to a checkpoint ([Cosign]): a
// second Ed25519 note signature over the same text, made with a key that
// never reaches the host. A cosigned checkpoint later proves, with a
// consistency proof, that the ledger only grew since the auditor saw it.
package proof
