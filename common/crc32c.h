#pragma once
// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the
// checksum of iSCSI (RFC 3720), ext4 and etcd's WAL. It guards log entries
// and snapshots on disk (storage/raft_storage.cc) and peer messages and
// snapshot chunks on the wire (controller/raft_wire.cc): a flipped bit is
// reported as corruption instead of reaching the state machine.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
// run time), else a slicing-by-8 table; both give the same values.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tenure {

/// Extends `crc` (the CRC32C of the bytes before, 0 for none) over
/// `data[0, n)`: crc32c(b, crc32c(a)) == crc32c(a + b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);

/// The CRC32C of `bytes`: crc32c("123456789") == 0xE3069283.
inline uint32_t crc32c(std::string_view bytes) { return crc32c_extend(0, bytes.data(), bytes.size()); }

/// Whether the hardware path is in use (for tests and the benchmark line).
bool crc32c_hardware();

/// The table-driven path only (tests compare it with the hardware one).
uint32_t crc32c_extend_software(uint32_t crc, const void* data, size_t n);

}  // namespace tenure
