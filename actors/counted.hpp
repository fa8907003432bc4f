#pragma once

// Every actor of the system is a counted_actor: it counts the messages it
// handles so that it can give its own account to atlas-ctl (CAF 0.17 has no
// telemetry module).

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/stateful_actor.hpp>

#include "messages/introspection.hpp"

namespace atlas {

template <class State, class Base>
class counted_actor : public caf::stateful_actor<State, Base> {
public:
  using super = caf::stateful_actor<State, Base>;
  using super::super;

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    ++handled_;
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
  uint64_t handled_ = 0;
  double last_ = 0;
};

/// The self pointer of a counted actor with interface `Handle` and `State`.
template <class Handle, class State>
using counted_pointer = counted_actor<State, typename Handle::base>*;

} // namespace atlas
