// A hostile cluster peer (issue: close the cluster). It speaks real BASP with
// CAF 0.17's own serializers and Atlas's message types, over TLS with
// whatever certificate it is given, and tries what an attacker on the
// network tried against the unprotected cluster. It reports every answer it
// gets as one JSON line; tests/integration/cluster_attack_test.py decides.
//
//   attack_client --port P --ca CA --cert CRT --key KEY --attack NAME
//                 [--victim-node N] [--victim-job J] [--scan IDS] [--path FILE]
//
// Attacks: messages (every message kind to actor ids 1..scan), routed,
// stages, anonymous, down, claim-master-id, http (an http_request with
// internal fields to every id), hang-up (submissions to every id, then the
// connection closed at once; --before-door K names the last one's
// receiver). Each runs on a connection of its own.

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/message.hpp>
#include <caf/node_id.hpp>

#include "messages/actors.hpp"
#include "messages/types.hpp"

using namespace atlas;

namespace {

std::map<std::string, std::string> args;

std::string arg(const std::string& k, const std::string& dflt = "") {
  auto i = args.find(k);
  return i == args.end() ? dflt : i->second;
}

void out(const std::string& kind, const std::string& detail) {
  std::string esc;
  for (char c : detail)
    esc += c == '"' || c == '\\' ? std::string{'\\', c} : (c < 32 ? std::string{' '} : std::string{c});
  std::printf("{\"%s\": \"%s\"}\n", kind.c_str(), esc.c_str());
  std::fflush(stdout);
}

std::string be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i)
    s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

uint64_t read_be(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

template <class... Ts>
std::string serialize(caf::actor_system& sys, Ts&... xs) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (auto err = sink(xs...))
    out("error", "cannot serialize: " + sys.render(err));
  return std::string(buf.begin(), buf.end());
}

/// One TLS connection speaking BASP by hand.
struct link {
  caf::actor_system& sys;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;
  bool closed = false;
  std::string in; // received, not yet read
  caf::node_id master;
  uint64_t door = 0;

  explicit link(caf::actor_system& s) : sys(s) {}
  ~link() {
    if (ssl)
      SSL_free(ssl);
    if (ctx)
      SSL_CTX_free(ctx);
    if (fd >= 0)
      ::close(fd);
  }

  bool open() {
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("127.0.0.1", arg("port").c_str(), &hints, &res) != 0)
      return false;
    fd = ::socket(res->ai_family, SOCK_STREAM, 0);
    bool ok = ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
    freeaddrinfo(res);
    if (!ok) {
      out("connect", std::strerror(errno));
      return false;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_load_verify_locations(ctx, arg("ca").c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!arg("cert").empty()) {
      SSL_CTX_use_certificate_file(ctx, arg("cert").c_str(), SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(ctx, arg("key").c_str(), SSL_FILETYPE_PEM);
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
      char buf[256];
      ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
      out("tls", std::string("refused: ") + buf);
      return false;
    }
    return true;
  }

  void write(const std::string& bytes) {
    if (!closed && SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) <= 0)
      closed = true;
  }

  /// The next whole BASP message (header, payload); false when none came
  /// within 250 ms, or the peer closed.
  bool read(std::string& header, std::string& payload) {
    for (;;) {
      if (in.size() >= 32 && in.size() >= 32 + read_be(in, 4, 4)) {
        auto len = read_be(in, 4, 4);
        header = in.substr(0, 32);
        payload = in.substr(32, len);
        in.erase(0, 32 + len);
        return true;
      }
      pollfd p{fd, POLLIN, 0};
      if (SSL_pending(ssl) == 0 && ::poll(&p, 1, 250) != 1)
        return false;
      char buf[65536];
      int got = SSL_read(ssl, buf, sizeof buf);
      if (got <= 0) {
        closed = true;
        return false;
      }
      in.append(buf, static_cast<size_t>(got));
    }
  }

  static std::string header(uint8_t op, size_t len, uint64_t data, uint64_t src, uint64_t dst,
                            uint8_t flags = 0) {
    return std::string{static_cast<char>(op), 0, 0, static_cast<char>(flags)} + be(len, 4)
           + be(data, 8) + be(src, 8) + be(dst, 8);
  }

  /// Handshakes claiming `me` as this peer's node id; learns the master's.
  bool handshake(caf::node_id me) {
    auto payload = serialize(sys, me);
    write(header(1, payload.size(), 0, 0, 0) + payload);
    std::string h, p;
    while (read(h, p)) {
      if (h[0] != 0)
        continue;
      caf::binary_deserializer src{sys, p.data(), p.size()};
      std::vector<std::string> app_ids;
      std::set<std::string> sigs;
      caf::actor_id aid = 0;
      if (src(master, app_ids, aid, sigs))
        return false;
      door = aid;
      return true;
    }
    return false;
  }

  void send(uint64_t dst, caf::message msg, uint64_t request, uint64_t src = 1) {
    std::vector<caf::strong_actor_ptr> stages;
    auto payload = serialize(sys, stages, msg);
    write(header(2, payload.size(), request, src, dst) + payload);
  }

  /// Every answer until none came for 2 s (heartbeats both ways meanwhile:
  /// CAF takes a silent peer for dead).
  void collect() {
    using clock = std::chrono::steady_clock;
    auto last = clock::now();
    std::string h, p;
    while (!closed && clock::now() - last < std::chrono::seconds(2)) {
      write(header(6, 0, 0, 0, 0));
      if (!read(h, p))
        continue;
      if (h[0] != 2 || (read_be(h, 8, 8) & 0x8000000000000000ull) == 0)
        continue; // heartbeats, CAF's own questions
      last = clock::now();
      caf::binary_deserializer src{sys, p.data(), p.size()};
      std::vector<caf::strong_actor_ptr> stages;
      caf::message msg;
      if (auto err = src(stages, msg)) {
        out("undecodable", sys.render(err));
        continue;
      }
      if (msg.match_elements<caf::error>())
        out("error", sys.render(msg.get_as<caf::error>(0)));
      else
        out("value", caf::to_string(msg));
    }
    if (closed)
      out("closed", "the master closed the connection");
  }
};

caf::node_id other_node() {
  caf::node_id::default_data::host_id_type host;
  host.fill(0x42);
  return caf::make_node_id(4242, host);
}

int run(caf::actor_system& sys) {
  link l{sys};
  if (!l.open())
    return 0;
  auto attack = arg("attack");
  if (!l.handshake(sys.node())) {
    out("closed", "no server handshake");
    return 0;
  }
  if (attack == "claim-master-id") { // a second handshake with the master's own id
    auto payload = serialize(sys, l.master);
    l.write(link::header(1, payload.size(), 0, 0, 0, 2) + payload);
    l.collect();
    return 0;
  }
  auto victim_node = arg("victim-node"), job = arg("victim-job");
  auto scan = std::stoul(arg("scan", "64"));
  auto slot_key = victim_node + "/0";
  uint64_t mid = 1;
  if (attack == "routed") {
    auto me = other_node();
    std::vector<caf::strong_actor_ptr> stages;
    auto msg = caf::make_message(stop_atom::value, job);
    auto payload = serialize(sys, me, l.master, stages, msg);
    l.write(link::header(3, payload.size(), mid, 5, l.door) + payload);
  } else if (attack == "stages") {
    std::vector<caf::strong_actor_ptr> stages{caf::actor_cast<caf::strong_actor_ptr>(
      sys.spawn([]() -> caf::behavior { return {[](int) {}}; }))};
    auto msg = caf::make_message(stop_atom::value, job);
    auto payload = serialize(sys, stages, msg);
    l.write(link::header(2, payload.size(), 0, 5, l.door) + payload);
  } else if (attack == "anonymous") {
    for (uint64_t id = 1; id <= scan; ++id)
      l.send(id, caf::make_message(stop_atom::value, job), 0, 0);
  } else if (attack == "down") {
    auto me = other_node();
    auto reason = caf::error{};
    auto payload = serialize(sys, me, l.master, reason);
    l.write(link::header(5, payload.size(), 0, 3, 0) + payload);
  } else if (attack == "http") {
    http_request req;
    req.method = arg("method", "POST");
    req.path = arg("http-path", "/job_bundle");
    req.upload_path = arg("path");
    req.upload_field = "job_bundle";
    req.upload_filename = job + ".tgz";
    req.listener = "";
    // As a worker may: ask the master for its gateway (its handle then
    // crossed the wire once and answers by id), then talk to every id.
    for (uint64_t id = 1; id <= scan; ++id)
      l.send(id, caf::make_message(get_atom::value, node_atom::value, std::string{}), mid++);
    l.collect();
    for (uint64_t id = 1; id <= scan; ++id)
      l.send(id, caf::make_message(req), mid++);
  } else if (attack == "hang-up") {
    // Many messages only the master's own node may send, then gone at once:
    // CAF must still know whose they are when it reads them after the
    // connection closed, and not take them for anonymous local ones.
    job_record rec;
    rec.project_name = "hang-up";
    rec.username = "evil";
    for (uint64_t id = 1; id <= scan; ++id) {
      rec.job_id = "hang-up-" + std::to_string(id);
      l.send(id, caf::make_message(submit_atom::value, rec), 0);
    }
    // The last one large, so that CAF is still reading it when it learns
    // that the connection closed: to the actor spawned `--before-door`
    // actors before the master's door (the master is one of those).
    auto before = std::stoul(arg("before-door", "1"));
    rec.job_id = "hang-up-large";
    rec.spec = std::string(size_t{16} << 20, 'x');
    // From an actor id not used before: CAF makes its proxy only then.
    l.send(l.door - before, caf::make_message(submit_atom::value, rec), 0, 1000 + before);
    SSL_shutdown(l.ssl);
    ::shutdown(l.fd, SHUT_RDWR);
    out("sent", "and hung up");
    return 0;
  } else if (attack == "messages") {
    // Handles of our own to hand over, as a joining node would.
    auto mine = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
    auto slot = caf::actor_cast<worker_slot_actor>(mine);
    slot_info info;
    info.key = slot_key;
    info.node_id = victim_node;
    job_report done;
    done.job_id = job;
    done.state = job_state::completed;
    job_record rec;
    rec.job_id = "attacker-job";
    std::vector<caf::message> kinds = {
      caf::make_message(stop_atom::value, job),
      caf::make_message(stop_atom::value),
      caf::make_message(list_atom::value),
      caf::make_message(nodes_atom::value),
      caf::make_message(jobs_atom::value),
      caf::make_message(jobs_atom::value, job),
      caf::make_message(queue_atom::value),
      caf::make_message(actors_atom::value),
      caf::make_message(get_atom::value, slots_atom::value),
      caf::make_message(get_atom::value, job),
      caf::make_message(get_atom::value),
      caf::make_message(drain_atom::value, victim_node, true),
      caf::make_message(drain_atom::value, slot_key),
      caf::make_message(clear_atom::value),
      caf::make_message(dequeue_atom::value, uint64_t{0}),
      caf::make_message(submit_atom::value, rec),
      caf::make_message(register_atom::value, info, slot),
      caf::make_message(idle_atom::value, slot_key, job),
      caf::make_message(ping_atom::value, victim_node),
      caf::make_message(report_atom::value, done),
      caf::make_message(started_atom::value, job),
      caf::make_message(placed_atom::value, slot_key),
      caf::make_message(fetch_atom::value, job, uint64_t{0}),
      caf::make_message(join_atom::value, std::string{"wrong"}),
      caf::make_message(stats_atom::value),
    };
    for (uint64_t id = 1; id <= scan; ++id)
      for (auto& m : kinds)
        l.send(id, m, mid++);
  } else {
    out("error", "unknown attack " + attack);
    return 2;
  }
  l.collect();
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN); // the master closing on us is an answer, not a crash
  for (int i = 1; i + 1 < argc; i += 2)
    args[std::string(argv[i]).substr(2)] = argv[i + 1];
  caf::actor_system_config cfg;
  register_message_types(cfg);
  cfg.load<caf::io::middleman>(); // which gives this process a node id
  cfg.set("logger.console", caf::atom("none"));
  caf::actor_system sys{cfg};
  int rc = run(sys);
  std::fflush(nullptr);
  std::_Exit(rc); // CAF's own shutdown is not what is tested here
}
