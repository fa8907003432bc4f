#pragma once

// Bundles extracted once per node. A sweep queues one bundle of the content
// store (library/bundle_store.hpp) for hundreds of jobs: every job's bundle
// is a hard link to the same file. The first job on a node extracts it into
// the node's cache; later jobs get a copy of that tree (no gzip, no tar
// headers to check again). A copy, not links: a job may change its files in
// place without touching another job's. Blocking file work: call on the
// thread pool only.

#include <cstddef>
#include <string>

#include "adapters/status.hpp"

namespace atlas {

/// <node_dir>/bundle-cache.
std::string bundle_cache_dir(const std::string& node_dir);

/// Whether `bundle` is shared content (a hard link of the content store),
/// so that caching its tree pays; "" when it is not.
/// The key names the stored file (device, inode, size, modification time),
/// which the store never changes: one key per content while it is stored.
std::string shared_bundle_key(const std::string& bundle);

/// Fills `work_dir` (which must not exist) with the tree of the bundle
/// `key` names, as extract_tgz with `strip_prefix` would leave it, extracting
/// `bundle` into `cache_dir` first when no job on this node did yet. The
/// cache keeps the `max_trees` most recently extracted trees.
status copy_cached_bundle(const std::string& cache_dir, const std::string& key,
                          const std::string& bundle, const std::string& strip_prefix,
                          const std::string& work_dir, size_t max_trees = 32);

} // namespace atlas
