#pragma once

// One version for the three programs (atlas-server, foundations, atlas-ctl).

namespace atlas {
inline constexpr const char* atlas_version = "0.1.0";
} // namespace atlas
