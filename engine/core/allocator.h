#pragma once
// Caching allocators. Freed blocks are kept in size-class bins and reused, so a training step
// allocates from the OS only in its first iterations. CPU blocks are 64-byte aligned.
#include <cstddef>
#include <cstdint>

#include "engine/core/device.h"

namespace oar {

struct MemoryStats {
  int64_t current_bytes = 0;   // bytes handed out and not yet freed
  int64_t peak_bytes = 0;      // highest current_bytes since the last reset
  int64_t cached_bytes = 0;    // bytes held in the cache, ready for reuse
  int64_t os_allocations = 0;  // calls that reached the OS
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Returns cached blocks to the OS.
  virtual void empty_cache() = 0;
};

// The allocator for a device (the CPU one always exists; CUDA only in CUDA builds).
Allocator& allocator_for(Device d);
MemoryStats memory_stats(Device d = Device::cpu());
void reset_peak_memory(Device d = Device::cpu());

}  // namespace oar
