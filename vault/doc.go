// Package vault is custodian's encrypted object store: a directory of
// immutable objects, each encrypted with age (https://age-encryption.org) to
// a single X25519 master key.
//
// Key management. Init generates the master identity. Its public key is kept
// in master.pub; its private key, in age-keygen format, is kept in
// master.key.age, encrypted with an operator passphrase through age's scrypt
// recipient. Open loads only the public key, so the ingest daemon can store
// objects without ever holding a secret. Reading requires Unlock, which
// derives the key from the passphrase and checks that it matches master.pub.
// Because every file is plain age, an operator can recover data with the stock
// CLI alone: "age -d master.key.age > key.txt; age -d -i key.txt OBJECT".
// Losing the passphrase or master.key.age loses every object.
//
// Object format. An object is a standard age file stored at
// objects/<first 2 hex>/<id>.age, where the ID is 128 random bits in
// lowercase hex. age draws a fresh random file key per object (the per-object
// data key), wraps it to the master key in the header, and encrypts the
// payload with ChaCha20-Poly1305 in 64 KiB STREAM chunks. Header and every
// chunk are authenticated and the final chunk is marked, so modification,
// truncation and extension are all detected on read. Plaintext never touches
// the disk. Object IDs are validated before any path is built from them.
//
// Durability. Every file is written to a temporary name, made durable,
// renamed into place, and the directories concerned are made durable. A
// single object does this with fsyncs: it exists once Writer.Commit has
// returned. Many objects finishing together use Writer.Close (write, rename,
// no fsync) and then Vault.Flush, which syncs the filesystem once for all of
// them (syncfs(2): the same guarantee as fsyncing every file and directory,
// at the cost of one journal commit); such an object may be referenced only
// after a Flush that started after its Close. Init writes master.pub
// last, so an interrupted Init never yields a usable vault whose private key
// was not saved. Open refuses a vault whose private parts are accessible to
// group or other users (ErrPermissions).
//
// Crash recovery. An object being written lives in tmp/<id>.partial, holding
// ciphertext only. After a crash, Recover empties tmp/. Objects that were
// committed but are not referenced by the caller's metadata (for example a
// crash between Commit and recording the ID) are the caller's to find with
// List and delete with Remove.
package vault
