#include "runtime/cluster_tls.hpp"

#include <filesystem>

#include <spdlog/spdlog.h>

namespace atlas {

namespace fs = std::filesystem;

namespace {

constexpr long node_cert_seconds = 365L * 86400;
constexpr long renew_before_s = 30L * 86400;

status make_dir(const std::string& dir, fs::perms perms) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return status::fail("cannot create " + dir + ": " + ec.message());
  fs::permissions(dir, perms, ec);
  return status::success();
}

} // namespace

cluster_ca_paths cluster_ca(const std::string& foundations_home) {
  auto dir = foundations_home + "/config/tls";
  return {dir + "/ca.key", dir + "/ca.crt"};
}

status ensure_cluster_ca(const node_config& cfg) {
  auto ca = cluster_ca(cfg.foundations_home);
  std::error_code ec;
  if (fs::exists(ca.cert, ec))
    return status::success();
  if (auto st = make_dir(fs::path(ca.cert).parent_path(), fs::perms::owner_all); !st)
    return st;
  auto st = make_cluster_ca(ca.key, ca.cert);
  if (!st && fs::exists(ca.cert, ec))
    return status::success(); // another master made it first
  return st;
}

status ensure_node_certificate(const node_config& cfg, tls_files& out) {
  auto ca = cluster_ca(cfg.foundations_home);
  auto dir = cfg.node_dir + "/tls";
  out = {ca.cert, dir + "/node.crt", dir + "/node.key"};
  const std::string role = cfg.is_master ? "master" : "worker";
  std::error_code ec;
  if (!fs::exists(ca.cert, ec))
    return status::fail("no cluster CA at " + ca.cert + " yet: the master creates it on its "
                        "first start (a node without the shared home needs it copied there)");
  peer_identity who;
  long left = 0;
  bool usable = read_certificate(out.cert, who, left) && who.name == cfg.node_id
                && who.role == role && left > 0 && fs::exists(out.key, ec);
  bool can_issue = fs::exists(ca.key, ec);
  if (usable && (left > renew_before_s || !can_issue)) {
    if (left <= renew_before_s)
      spdlog::warn("this node's certificate {} expires in {} hour(s): issue a new one with "
                   "`atlas-server issue-cert`", out.cert, left / 3600);
    return status::success();
  }
  if (!can_issue)
    return status::fail("no certificate for node '" + cfg.node_id + "' (" + role + ") in " + dir
                        + ", and no cluster CA key here to issue one: run `atlas-server "
                        "issue-cert " + cfg.node_id + " --role " + role + " --out DIR"
                        + "` where the CA is, then copy its " + cfg.node_id + ".crt and .key here as node.crt "
                        "and node.key");
  if (auto st = make_dir(dir, fs::perms::owner_all); !st)
    return st;
  return issue_certificate(tls_files{ca.cert, "", ca.key}, cfg.node_id, role, node_cert_seconds,
                           out.key, out.cert);
}

std::shared_ptr<tls_context> node_tls_context(const node_config& cfg, std::string& error) {
  tls_files files;
  if (auto st = ensure_node_certificate(cfg, files); !st) {
    error = st.error();
    return nullptr;
  }
  return tls_context::make(files, error);
}

status issue_certificate_into(const std::string& foundations_home, const std::string& name,
                              const std::string& role, long seconds, const std::string& dir) {
  auto ca = cluster_ca(foundations_home);
  if (auto st = make_dir(dir, fs::perms::owner_all); !st)
    return st;
  auto st = issue_certificate(tls_files{ca.cert, "", ca.key}, name, role, seconds,
                              dir + "/" + name + ".key", dir + "/" + name + ".crt");
  if (!st)
    return st;
  std::error_code ec;
  fs::copy_file(ca.cert, dir + "/ca.crt", fs::copy_options::overwrite_existing, ec);
  if (ec)
    return status::fail("cannot copy " + ca.cert + " to " + dir + ": " + ec.message());
  return status::success();
}

} // namespace atlas
