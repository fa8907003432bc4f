#include "runtime/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

namespace atlas {

namespace {

std::optional<spdlog::level::level_enum> parse_level(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  using spdlog::level::level_enum;
  if (name == "trace")
    return level_enum::trace;
  if (name == "debug")
    return level_enum::debug;
  if (name == "info")
    return level_enum::info;
  if (name == "warn" || name == "warning")
    return level_enum::warn;
  if (name == "error")
    return level_enum::err;
  return std::nullopt;
}

// spdlog's %l spells warn as "warning"; our lines use the names users type.
class level_flag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view name = level_name(msg.level);
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<level_flag>();
  }

private:
  static std::string_view level_name(spdlog::level::level_enum l) {
    switch (l) {
      case spdlog::level::trace: return "trace";
      case spdlog::level::debug: return "debug";
      case spdlog::level::info: return "info";
      case spdlog::level::warn: return "warn";
      case spdlog::level::err: return "error";
      case spdlog::level::critical: return "critical";
      default: return "off";
    }
  }
};

// The node id goes in through a flag, not the pattern text, so that a '%'
// in it is printed as-is.
class node_flag final : public spdlog::custom_flag_formatter {
public:
  explicit node_flag(std::string node) : node_(std::move(node)) {}
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    dest.append(node_.data(), node_.data() + node_.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<node_flag>(node_);
  }

private:
  std::string node_;
};

void set_error(std::string* out, std::string message) {
  if (out != nullptr)
    *out = std::move(message);
}

} // namespace

bool is_valid_log_level(const std::string& level) {
  return parse_level(level).has_value();
}

bool init_logging(const std::string& level, const std::string& file,
                  const std::string& node_id, std::string* error, size_t max_bytes,
                  size_t max_files) {
  try {
    const auto lvl = parse_level(level);
    if (!lvl) {
      set_error(error, "unknown log level '" + level +
                           "' (expected trace, debug, info, warn or error)");
      return false;
    }
    spdlog::sink_ptr sink;
    if (file.empty())
      sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    else
      sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(file, max_bytes, max_files);

    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<level_flag>('*');
    formatter->add_flag<node_flag>('N', node_id);
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%*%$ [node=%N] %v");

    auto logger = std::make_shared<spdlog::logger>("atlas", std::move(sink));
    logger->set_formatter(std::move(formatter));
    logger->set_level(*lvl);
    // A file gets every line at once, as stderr (unbuffered) did: the node's
    // log is read while it runs (`atlas-server start` says where it is).
    logger->flush_on(file.empty() ? spdlog::level::warn : spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
    spdlog::flush_every(std::chrono::seconds(1));
    return true;
  } catch (const std::exception& e) { // spdlog_ex: the file cannot be opened
    set_error(error, std::string("cannot set up logging: ") + e.what());
    return false;
  }
}

void shutdown_logging() {
  try {
    spdlog::flush_every(std::chrono::seconds(0)); // a zero interval ends the thread
    if (auto logger = spdlog::default_logger())
      logger->flush();
  } catch (const std::exception&) {
    // Nothing left to report the failure to.
  }
}

} // namespace atlas
