#pragma once

// Every actor of the system is a counted_actor: it counts the messages it
// handles so that it can give its own account to atlas-ctl, and adds them to
// its kind's counters for /metrics (CAF 0.17 has no telemetry module).

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <vector>

#include "library/metrics.hpp"
#include "messages/introspection.hpp"

namespace atlas {

template <class State, class Base>
class counted_actor : public caf::stateful_actor<State, Base> {
public:
  using super = caf::stateful_actor<State, Base>;

  template <class... Ts>
  explicit counted_actor(Ts&&... xs) : super(std::forward<Ts>(xs)...) {
    ++kind_.live;
  }

  ~counted_actor() override {
    --kind_.live;
  }

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    ++handled_;
    ++kind_.handled;
    kind_.mailbox.store(this->mailbox().size(), std::memory_order_relaxed);
    using namespace std::chrono;
    last_ = duration<double>(system_clock::now().time_since_epoch()).count();
    return super::consume(x);
  }

  /// Its account of itself; call only from inside the actor.
  actor_stats stats(std::string node, std::string summary) {
    actor_stats out;
    out.name = State::name;
    out.id = this->id();
    out.node = std::move(node);
    out.mailbox = this->mailbox().size();
    out.handled = handled_;
    out.last_message = last_;
    out.summary = std::move(summary);
    return out;
  }

private:
  metrics::actor_counters& kind_ = metrics::actor(State::name);
  uint64_t handled_ = 0;
  double last_ = 0;
};

/// Collects the stats of many actors into one answer (node and master).
struct stats_gathering {
  caf::typed_response_promise<std::vector<actor_stats>> rp;
  std::vector<actor_stats> stats;
  size_t waiting = 0;
  std::string node; // filled into answers that name none

  void add(actor_stats s) {
    if (s.node.empty())
      s.node = node;
    stats.push_back(std::move(s));
  }

  /// One answer (or failure) is in; the last one delivers.
  void done_one() {
    if (waiting > 0 && --waiting == 0)
      rp.deliver(std::move(stats));
  }
};

/// The self pointer of a counted actor with interface `Handle` and `State`.
template <class Handle, class State>
using counted_pointer = counted_actor<State, typename Handle::base>*;

} // namespace atlas
