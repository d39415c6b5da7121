#pragma once
// A SQLite VFS named "tenure-faulty" that forwards to the default VFS and
// can be told to fail every fsync or every write of the main database and
// WAL files, as a dying disk would. Lets tests prove that a failed fsync or
// write is fatal (DESIGN.md, house style 5).

namespace tenure::storage::testing {

/// Name to pass as RaftStorageOptions::vfs.
inline constexpr const char* kFaultyVfs = "tenure-faulty";

/// Registers the VFS once (idempotent). Not the default VFS.
void register_faulty_vfs();

/// From now on, xSync fails with SQLITE_IOERR_FSYNC.
void fail_syncs(bool on);
/// From now on, xWrite fails with SQLITE_IOERR_WRITE.
void fail_writes(bool on);
/// How many xSync calls reached the real files since the last reset.
int sync_count();
void reset_sync_count();

}  // namespace tenure::storage::testing
