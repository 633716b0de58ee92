// A small SVG line chart: bandwidth (% of copy) against tokens (log scale), one line per series.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ropejit::bench {

// series name -> (tokens, percent of copy bandwidth) points
std::string plot_svg(const std::map<std::string, std::vector<std::pair<double, double>>>& series,
                     const std::string& title);

}  // namespace ropejit::bench
