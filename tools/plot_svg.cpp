#include "plot_svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ropejit::bench {

std::string plot_svg(const std::map<std::string, std::vector<std::pair<double, double>>>& series,
                     const std::string& title) {
  const double W = 900, H = 520, left = 70, right = 260, top = 50, bottom = 60;
  double xmin = 1e300, xmax = 0;
  for (const auto& [name, pts] : series)
    for (auto [x, y] : pts) xmin = std::min(xmin, x), xmax = std::max(xmax, x);
  if (xmax <= xmin) xmax = xmin * 2;
  const double lx0 = std::log2(xmin), lx1 = std::log2(xmax);
  auto px = [&](double x) { return left + (std::log2(x) - lx0) / (lx1 - lx0) * (W - left - right); };
  auto py = [&](double y) { return top + (1.0 - y / 100.0) * (H - top - bottom); };
  std::string s = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{0}' height='{1}' font-family='sans-serif' font-size='12'>\n"
      "<rect width='{0}' height='{1}' fill='white'/>\n<text x='{2}' y='28' font-size='16'>{3}</text>\n",
      W, H, left, title);
  for (int y = 0; y <= 100; y += 10) {
    s += fmt::format("<line x1='{}' x2='{}' y1='{:.1f}' y2='{:.1f}' stroke='#ddd'/>", left, W - right, py(y), py(y));
    s += fmt::format("<text x='{}' y='{:.1f}' text-anchor='end'>{}%</text>\n", left - 6, py(y) + 4, y);
  }
  for (double x = std::exp2(std::floor(lx0)); x <= xmax * 1.001; x *= 2) {
    if (x < xmin * 0.999) continue;
    s += fmt::format("<line x1='{0:.1f}' x2='{0:.1f}' y1='{1}' y2='{2}' stroke='#eee'/>", px(x), top, H - bottom);
    s += fmt::format("<text x='{:.1f}' y='{}' text-anchor='middle'>{}</text>\n", px(x), H - bottom + 18,
                     x >= 1024 ? fmt::format("{}K", x / 1024) : fmt::format("{}", x));
  }
  s += fmt::format("<text x='{}' y='{}' text-anchor='middle'>tokens</text>\n", (left + W - right) / 2, H - 15);
  s += fmt::format("<text x='18' y='{}' transform='rotate(-90 18 {})' text-anchor='middle'>bandwidth, % of "
                   "device-to-device copy</text>\n",
                   (top + H - bottom) / 2, (top + H - bottom) / 2);
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  int i = 0;
  for (const auto& [name, pts0] : series) {
    auto pts = pts0;
    std::sort(pts.begin(), pts.end());
    const char* col = colors[i % 8];
    std::string poly;
    for (auto [x, y] : pts) {
      poly += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
      s += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='3' fill='{}'/>", px(x), py(y), col);
    }
    s += fmt::format("<polyline points='{}' fill='none' stroke='{}' stroke-width='2'/>\n", poly, col);
    double ly = top + 10 + i * 18;
    s += fmt::format("<line x1='{}' x2='{}' y1='{}' y2='{}' stroke='{}' stroke-width='3'/>", W - right + 15,
                     W - right + 35, ly, ly, col);
    s += fmt::format("<text x='{}' y='{}'>{}</text>\n", W - right + 40, ly + 4, name);
    ++i;
  }
  return s + "</svg>\n";
}

}  // namespace ropejit::bench
