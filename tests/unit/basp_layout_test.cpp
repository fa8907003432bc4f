// The front's framing (adapters/basp_framer, no CAF) against CAF 0.17's own
// BASP header and binary serializer: the length the framer reads is the one
// CAF writes, at the place and in the byte order CAF writes it.

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <caf/binary_serializer.hpp>
#include <caf/io/basp/header.hpp>

#include "adapters/basp_framer.hpp"

using namespace atlas;

TEST_CASE("the framer reads CAF's serialized BASP header as CAF wrote it", "[basp_layout]") {
  REQUIRE(caf::io::basp::header_size == basp_framer::header_size);
  for (uint32_t len : {0u, 1u, 0x01020304u, 64u << 10, 0xfffffffeu, 0xffffffffu}) {
    caf::io::basp::header hdr{caf::io::basp::message_type::client_handshake, 0x02, len,
                              0x1112131415161718ull, 0x2122232425262728ull,
                              0x3132333435363738ull};
    std::vector<char> buf;
    caf::binary_serializer sink{static_cast<caf::execution_unit*>(nullptr), buf};
    REQUIRE(!sink(hdr));
    REQUIRE(buf.size() == basp_framer::header_size);
    CHECK(static_cast<uint8_t>(buf[0]) == 0x01); // operation
    CHECK(static_cast<uint8_t>(buf[3]) == 0x02); // flags
    CHECK(basp_framer::payload_len(buf.data()) == len);
    CHECK(static_cast<uint8_t>(buf[8]) == 0x11); // operation_data, big-endian, then the actors
    CHECK(static_cast<uint8_t>(buf[31]) == 0x38);
  }
}
