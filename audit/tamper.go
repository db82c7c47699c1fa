package audit

import (
	"bytes"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// This file is for demonstrations and tests only. Its functions play an
// attacker who can write the ledger file (for example with a bbolt tool)
// but does not hold the signing key: they change stored bytes without
// updating the tree, the checkpoint or the derived indexes, so that
// [Verify] (or a daemon start) can show that the change is found. No
// production code path calls them; they exist so that no package above
// audit needs to know the file's bucket layout.
//
// They open a closed ledger file directly and fail if another handle holds
// it ([ErrLocked]).

// TamperEvent replaces the stored bytes of event index with edit(leaf).
// edit receives a copy it may modify and return.
func TamperEvent(path string, index int64, edit func(leaf []byte) []byte) error {
	return tamper(path, bucketEvents, u64(index), edit)
}

// TamperDataset replaces the stored current state of dataset id with
// edit(record), where record is the dataset's JSON record (a copy).
func TamperDataset(path, id string, edit func(record []byte) []byte) error {
	return tamper(path, bucketDatasets, []byte(id), edit)
}

// TamperVerifierKey replaces the verifier key recorded in the ledger, as an
// attacker who swapped the signing key would, to make the ledger look
// signed by it.
func TamperVerifierKey(path, vkey string) error {
	return tamper(path, bucketMeta, keyVerifierKey, func([]byte) []byte { return []byte(vkey) })
}

func tamper(path string, bucket, key []byte, edit func([]byte) []byte) error {
	if edit == nil {
		return fmt.Errorf("audit: tamper: %w: nil edit", ErrInvalidArgument)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("audit: tamper: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultTimeout})
	if err != nil {
		return fmt.Errorf("audit: tamper %s: %w", path, openError(err))
	}
	err = db.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucket)
		if b == nil {
			return fmt.Errorf("%w: bucket %q missing", ErrFormat, bucket)
		}
		v := b.Get(key)
		if v == nil && !bytes.Equal(bucket, bucketMeta) {
			return fmt.Errorf("%w: no %s entry %q", ErrInvalidArgument, bucket, key)
		}
		return b.Put(key, edit(bytes.Clone(v)))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: tamper %s: %w", path, err)
	}
	return nil
}
