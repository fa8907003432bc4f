#pragma once

// The pure parts of running a job in a container: a job's Docker-style spec
// (as the original client sends it) becomes the body of POST
// /containers/create; memory sizes become bytes; the engine's multiplexed
// log stream becomes stdout/stderr bytes. No I/O, no CAF: unit-tested alone.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/byte_size.hpp"

namespace atlas::docker {

using atlas::parse_memory;

/// Where and how a job's container runs. Host paths are absolute.
struct container_options {
  std::string job_id;
  std::string node_id;
  std::string default_image;       ///< docker.image: when the spec names none
  std::string network_mode = "none";
  std::string user;                ///< docker.user; empty: the image's user
  std::string python = "python3";  ///< runs `python3 <command...>` without an entrypoint
  std::string work_dir;            ///< the job's directory, bound at /job
  std::string cwd;                 ///< where the job runs on the host (work_dir[/job_source])
  std::string results_root;        ///< bound at the same path
  std::string config_dir;          ///< $FOUNDATIONS_HOME/config, bound read-only
  /// Host directories the spec's own `volumes` may bind (anything else is refused).
  std::vector<std::string> volume_roots;
  std::vector<std::string> env;    ///< "K=V": the job's own variables
  std::vector<std::string> gpus;   ///< GPU ids handed to the container
  double cpus = 0;                 ///< the job's CPUs (spec.cpus); 0: no CPU limit
};

/// The job's working directory inside the container ("/job/job_source").
std::string container_cwd(const container_options& o, const std::string& spec_json);

/// The image the spec names ("" when none).
std::string spec_image(const std::string& spec_json);

/// The JSON body of POST /containers/create. nullopt with `error` (worded
/// as a job failure reason) when the spec cannot run.
///   Image       spec.image, else the default image
///   Entrypoint  spec.entrypoint, else [python]; Cmd spec.command
///   Env         o.env (FOUNDATIONS_WORKING_DIR set to the container's cwd)
///   WorkingDir  spec.working_dir, else /job/job_source (or /job)
///   Binds       work_dir:/job:rw, results_root:results_root:rw,
///               config_dir:/root/.foundations/config:ro, then spec.volumes
///               ({host: {bind, mode}} or ["host:container[:mode]"]), a spec
///               volume replacing a default with the same container path
///   Memory      spec.mem_limit in bytes (MemorySwap the same: no swap)
///   NanoCpus    o.cpus * 1e9 when o.cpus > 0
///   NetworkMode o.network_mode; DeviceRequests: nvidia with o.gpus
///   Labels      atlas.job_id, atlas.node
std::optional<std::string> create_body(const std::string& spec_json, const container_options& o,
                                       std::string& error);

/// The variables a container gets from the job's whole environment
/// `job_env`: those the job set itself (not inherited from the node's
/// `node_env`, or changed, or named in `keep`). The GPU variables are
/// dropped: the engine hands the container its GPUs.
std::vector<std::string> container_env(const std::vector<std::string>& job_env,
                                       const std::map<std::string, std::string>& node_env,
                                       const std::set<std::string>& keep);

/// The names in spec.environment.
std::set<std::string> spec_env_names(const std::string& spec_json);

/// Splits the engine's multiplexed log stream: frames of an 8-byte header
/// (stream: 1 stdout, 2 stderr; 3 bytes zero; 4-byte big-endian size) and
/// the payload. Chunks may cut frames anywhere.
class log_demux {
public:
  using sink = std::function<void(int stream, std::string_view payload)>;

  /// Feeds `chunk`; calls `out` for every complete frame (a large frame's
  /// payload may come in pieces).
  void feed(std::string_view chunk, const sink& out);

  /// True while a frame is unfinished (its header or payload is still due).
  bool mid_frame() const { return !buf_.empty() || payload_left_ > 0; }

private:
  std::string buf_;
  size_t payload_left_ = 0; // of the frame being passed through
  int stream_ = 0;
};

} // namespace atlas::docker
