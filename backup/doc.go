// Package backup writes, checks and reads custodian backups.
//
// # Design
//
// A backup is a plain directory that mirrors what an installation needs to be
// rebuilt, and holds no plaintext and no unencrypted private key:
//
//	MANIFEST                         signed manifest (below)
//	keys/ledger.vkey                 the ledger's verifier key (public)
//	keys/ledger.sign.age             the ledger's signing key, sealed to the vault's master key
//	vault/master.pub                 the vault's public key
//	vault/master.key.age             the vault's private key, encrypted with the passphrase
//	vault/objects/xx/ID.age          ciphertext, one file per vault object
//	vault/tmp/                       empty, so that vault/ opens as a vault
//	snapshot-N/ledger.db             the ledger as of N events (a bbolt transaction copy)
//	snapshot-N/ledger.checkpoint     that ledger's signed checkpoint
//	snapshot-N/config/...            the configuration file and each source's known_hosts
//
// Consistency: the ledger snapshot is taken first, in one read transaction,
// and the backup copies exactly the vault objects the snapshot's datasets
// name (committed objects are immutable; objects written afterwards belong to
// the next backup). Vault objects are copied incrementally: an object already
// in the directory and listed, with its size, in the previous signed manifest
// is kept; a new one is copied through a temporary file, fsynced and renamed.
// The keys and the vault's key files never change for an installation and
// are written once; a directory holding another installation's backup is
// refused. Each backup writes a new snapshot directory and then replaces
// MANIFEST atomically (the commit point); older snapshot directories are
// removed afterwards, so a crash leaves the previous backup intact.
//
// The manifest is a note (golang.org/x/mod/sumdb/note) signed with the
// ledger's key. Its text is
//
//	custodian-backup/1
//	ledger <size> <base64 tree hash>
//	snapshot <directory>
//	created <RFC 3339 UTC time>
//	<sha256 hex>  <path>          one line per file, sorted by path
//
// Its first line keeps it apart from the ledger's checkpoints, which the same
// key signs (their first line is the key's name). [Verify] needs no daemon:
// the signature, every hash, the ledger snapshot ([audit.Verify], optionally
// against a checkpoint an auditor kept, so an older ledger is caught as a
// rollback), every object the ledger names, and, given the passphrase, every
// object decrypted and checked against the ledger.
package backup
