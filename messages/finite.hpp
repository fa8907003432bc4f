#pragma once
// Doubles that arrive from another node are made finite as they load.
#include <cmath>

#include <caf/meta/load_callback.hpp>
#include <caf/none.hpp>

namespace atlas {

/// For the end of an inspect() field list: after loading, each of `ds` that
/// is ±inf or NaN becomes 0 (our doubles are epoch seconds). CAF 0.17's
/// binary serializer never returns when it writes an infinite double
/// (pack754 halves it forever), so one such value from a peer would hang
/// whichever actor or middleman later forwarded it. Found by fuzzing.
template <class... Ds>
auto finite_on_load(Ds&... ds) {
  return caf::meta::load_callback([&ds...]() -> caf::none_t {
    ((ds = std::isfinite(ds) ? ds : 0.0), ...);
    return caf::none;
  });
}

} // namespace atlas
