#pragma once

// YAML values read by the CLI (sweep files, job.config.yaml) as the JSON the
// scheduler takes.

#include <optional>
#include <string>

namespace YAML {
class Node;
}

namespace atlas::cli {

/// A plain YAML scalar as a number, when it is one ("1e-5", "0.1", "3").
std::optional<double> yaml_number(const std::string& scalar);

/// A YAML value as JSON text: plain scalars become numbers, booleans or null
/// where they read as such; quoted ones stay strings.
std::string yaml_json(const YAML::Node& node);

} // namespace atlas::cli
