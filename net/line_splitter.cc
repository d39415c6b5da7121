#include "net/line_splitter.h"

namespace tenure::net {

bool LineSplitter::feed(std::string_view piece,
                        const std::function<void(std::string_view line)>& on_line) {
  if (failed_) return false;
  while (!piece.empty()) {
    size_t nl = piece.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() + piece.size() > max_line_bytes_) {
        failed_ = true;
        partial_.clear();
        return false;
      }
      partial_.append(piece);
      return true;
    }
    std::string_view line = piece.substr(0, nl);
    piece.remove_prefix(nl + 1);
    if (!partial_.empty()) {
      if (partial_.size() + line.size() > max_line_bytes_) {
        failed_ = true;
        partial_.clear();
        return false;
      }
      partial_.append(line);
      line = partial_;
    } else if (line.size() > max_line_bytes_) {
      failed_ = true;
      return false;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) on_line(line);
    partial_.clear();
  }
  return true;
}

}  // namespace tenure::net
