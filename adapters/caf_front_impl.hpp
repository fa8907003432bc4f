#pragma once

// The loop-side state of caf_front, shared by its sources: caf_front.cpp (the
// public calls, the listener's hooks, resolving a dialled address),
// caf_front_handshake.cpp (a new connection until CAF gets its end) and
// caf_front_relay.cpp (the bytes both ways, then the close). Private to them.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "adapters/basp_guard.hpp"
#include "adapters/caf_front.hpp"
#include "adapters/tcp_listener.hpp"

namespace atlas {

// Members below the atomic belong to the loop thread.
struct caf_front::impl final : tcp_listener {
  struct relay;
  using ready_fn = std::function<void(int, const peer_identity&)>;
  using failed_fn = std::function<void(const std::string&)>;

  static constexpr size_t read_size = 64 << 10;

  impl(event_loop& l, caf_front_options o); // caf_front.cpp

  // -- the listener's hooks (caf_front.cpp) --
  void close_connections() override;

  // -- a new connection (caf_front_handshake.cpp) --
  void accept(uv_stream_t* server) override;
  relay* make_relay(uv_loop_t* l, bool inbound);
  void start_dial(uv_loop_t* l, const sockaddr* addr, std::string name, std::string role,
                  ready_fn ready, failed_fn failed);
  void start_tls(relay* r);
  bool admit(relay* r);
  void attach(relay* r);
  static void on_connected(uv_connect_t* req, int status);

  // -- relaying and closing (caf_front_relay.cpp) --
  void from_peer(relay* r, const char* data, size_t n);
  void to_caf(relay* r, std::string_view plain);
  void from_caf(relay* r, const char* data, size_t n);
  void send(relay* r, uv_stream_t* to, std::string_view data);
  void side_ended(relay* r, uv_stream_t* ended);
  void close_relay(relay* r, const std::string& why = {});
  void pause_if_full(relay* r, uv_stream_t* to);
  void read_on(relay* r, uv_stream_t* s);
  void read_off(relay* r, uv_stream_t* s);
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_closed(uv_handle_t* h);

  const caf_front_options opts;
  std::atomic<size_t> open_relays{0};

  std::unordered_set<relay*> relays;
  std::array<char, read_size> read_buf; // reads are handled one at a time
};

// One peer's connection and its twin towards CAF; deletes itself once its
// three handles are closed.
struct caf_front::impl::relay {
  relay(impl* f, bool in) : front(f), keep(f->shared_from_this()), inbound(in),
                            framer(f->opts.limits), out_framer({UINT32_MAX, UINT32_MAX}) {}

  impl* front;
  std::shared_ptr<tcp_listener> keep; // close callbacks may run after ~caf_front
  bool inbound;                       // the peer connected to us
  uv_tcp_t peer{};
  uv_pipe_t caf{};    // our end of CAF's socketpair, once attached
  uv_timer_t timer{}; // the handshake's deadline, then the flush's
  uv_connect_t connect{};
  uv_shutdown_t shut{};
  int open_handles = 3;
  basp_framer framer;     // peer -> CAF
  basp_framer out_framer; // CAF -> peer
  std::unique_ptr<tls_session> tls;
  std::unique_ptr<basp_guard> guard;
  peer_identity who;
  std::string name;      // the peer's address (and identity, once known), for the log
  std::string want_role; // dialled: the role the server must show
  ready_fn ready;
  failed_fn failed;
  bool admitted = false; // its certificate's role may be here
  bool attached = false;
  bool peer_reading = false, caf_reading = false, peer_ended = false, caf_ended = false;
  bool closed = false;

  uv_stream_t* peer_s() { return reinterpret_cast<uv_stream_t*>(&peer); }
  uv_stream_t* caf_s() { return reinterpret_cast<uv_stream_t*>(&caf); }
  bool ended(const uv_stream_t* s) const {
    return s == reinterpret_cast<const uv_stream_t*>(&peer) ? peer_ended : caf_ended;
  }
  bool& reading(const uv_stream_t* s) {
    return s == reinterpret_cast<const uv_stream_t*>(&peer) ? peer_reading : caf_reading;
  }
  uv_stream_t* other(const uv_stream_t* s) {
    return s == reinterpret_cast<const uv_stream_t*>(&peer) ? caf_s() : peer_s();
  }
};

} // namespace atlas
