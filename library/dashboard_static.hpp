#pragma once

// Files the dashboard serves: its static page (web/) and the artifacts jobs
// saved. Blocking file reads: call on the thread pool only. Both refuse
// paths that leave their folder (.., absolute paths, symbolic links out).

#include <string>
#include <vector>

#include "messages/http.hpp"
#include "library/config.hpp"

namespace atlas {

/// The content type for a file name, by extension ("text/html; charset=utf-8",
/// "application/javascript; charset=utf-8", "image/png", ...); unknown ones
/// are "application/octet-stream".
std::string content_type_of(const std::string& path);

/// GET of `url_path` ("/" = index.html) under `web_dir`: 200 with the file,
/// 404 when there is none, 400 for a path that tries to leave the folder.
http_response serve_static(const std::string& web_dir, const std::string& url_path);

/// The file `relative` under the first of `bases` that has it (the job's run
/// directory while it runs, its archive afterwards); 404 otherwise, and for
/// any path that resolves outside its base.
http_response serve_artifact(const std::vector<std::string>& bases, const std::string& relative);

/// Settles cfg.web_dir and cfg.sdk_dir: $ATLAS_WEB_DIR / $ATLAS_SDK_DIR,
/// else what atlas.config.yaml's `directories.web_dir` / `sdk_dir` set,
/// else `<prefix>/share/atlas/{web,sdk/python}` of an
/// installed program, else `{web,sdk/python}` of the source tree of the
/// build folder the program is in (its folder or a parent): named by the
/// folder's atlas-source-root.txt, so a build folder may be anywhere. Missing folders
/// leave the field empty (the page answers 404; jobs get no SDK on PYTHONPATH).
void resolve_dashboard_dirs(node_config& cfg);
/// The same for a program in `program_dir`.
void resolve_dashboard_dirs(node_config& cfg, const std::string& program_dir);

} // namespace atlas
