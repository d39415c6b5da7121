#pragma once
// Admission to a bounded queue, by count and by bytes (DESIGN.md, house
// style 6). The driver queues proposals while a Ready's fsync runs and
// flushes them all into the next Ready; without a bound a burst of writes
// during a slow fsync grew that queue without limit. Past the bound a
// proposal is refused at once (503 `busy` with Retry-After at the API).
//
// Thread: owned by one strand.

#include <cstddef>

namespace tenure::replication {

class QueueBound {
 public:
  QueueBound(size_t max_count, size_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}

  /// Counts in an item of `bytes` and returns true if it fits. An empty
  /// queue admits one item of any size, so one large proposal is never
  /// refused forever (the core's own bounds judge it).
  bool admit(size_t bytes) {
    if (count_ > 0 && (count_ >= max_count_ || bytes_ + bytes > max_bytes_)) return false;
    ++count_;
    bytes_ += bytes;
    return true;
  }
  /// The queue was emptied.
  void reset() { count_ = bytes_ = 0; }

  size_t count() const { return count_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t max_count_;
  size_t max_bytes_;
  size_t count_ = 0;
  size_t bytes_ = 0;
};

}  // namespace tenure::replication
