#include "models/max_pool.hpp"

#include <cmath>
#include <limits>

#include <ATen/Parallel.h>
#include <torch/autograd.h>

namespace actortrain {

namespace {

bool has_fast_path(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
         x.dim() == 4 && x.is_contiguous() && x.size(2) >= 2 && x.size(3) >= 2;
}

/// One output row of a plane: windows over input rows `top` and `bottom`,
/// `base` the index of top[0] in its plane. LibTorch's kernel scans a
/// window row by row and takes a value above the maximum so far (strictly:
/// the first of equal values wins, +0 before -0 too) or a NaN (the last
/// NaN wins). Without NaNs that is the tree below, whose selects the
/// compiler vectorizes (a scalar scan with branches mispredicts on ReLU's
/// ties and costs more than LibTorch's kernel).
template <bool with_indices>
void pool_row(const float* __restrict top, const float* __restrict bottom,
              int64_t width, int64_t base, int64_t columns,
              float* __restrict out, int64_t* __restrict indices) {
  for (int64_t c = 0; c < columns; ++c) {
    const float v0 = top[2 * c];
    const float v1 = top[2 * c + 1];
    const float v2 = bottom[2 * c];
    const float v3 = bottom[2 * c + 1];
    const bool right_top = v1 > v0;
    const bool right_bottom = v3 > v2;
    const float best_top = right_top ? v1 : v0;
    const float best_bottom = right_bottom ? v3 : v2;
    const bool lower = best_bottom > best_top;
    out[c] = lower ? best_bottom : best_top;
    if (with_indices) {
      // Arithmetic, not selects, so that it vectorizes with the values.
      const int32_t l = lower;
      const int32_t t = right_top;
      const int32_t b = right_bottom;
      indices[c] =
          base + 2 * c +
          static_cast<int64_t>(l * (static_cast<int32_t>(width) + b - t) + t);
    }
  }
}

/// The same row the way LibTorch scans it, for rows that hold a NaN.
void pool_row_scanning(const float* top, const float* bottom, int64_t width,
                       int64_t base, int64_t columns, float* out,
                       int64_t* indices) {
  for (int64_t c = 0; c < columns; ++c) {
    const float v[4] = {top[2 * c], top[2 * c + 1], bottom[2 * c],
                        bottom[2 * c + 1]};
    float best = -std::numeric_limits<float>::infinity();
    int which = 0;
    for (int k = 0; k < 4; ++k)
      if (v[k] > best || std::isnan(v[k])) {
        best = v[k];
        which = k;
      }
    out[c] = best;
    if (indices)
      indices[c] = base + (which >> 1) * width + 2 * c + (which & 1);
  }
}

bool has_nan(const float* row, int64_t n) {
  int count = 0;
  for (int64_t i = 0; i < n; ++i)
    count += row[i] != row[i];
  return count != 0;
}

/// The pooled values and, when `indices` is defined, each window's index
/// into its h x w plane, as LibTorch's CPU kernel chooses it.
void pool_planes(const torch::Tensor& x, torch::Tensor& out,
                 torch::Tensor* indices) {
  const int64_t planes = x.size(0) * x.size(1);
  const int64_t h = x.size(2);
  const int64_t w = x.size(3);
  const int64_t oh = h / 2;
  const int64_t ow = w / 2;
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  int64_t* idx = indices ? indices->data_ptr<int64_t>() : nullptr;
  at::parallel_for(0, planes, 16, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      for (int64_t r = 0; r < oh; ++r) {
        const float* top = in + p * h * w + 2 * r * w;
        const float* bottom = top + w;
        float* o_row = o + (p * oh + r) * ow;
        int64_t* i_row = idx ? idx + (p * oh + r) * ow : nullptr;
        if (has_nan(top, 2 * w))
          pool_row_scanning(top, bottom, w, 2 * r * w, ow, o_row, i_row);
        else if (i_row)
          pool_row<true>(top, bottom, w, 2 * r * w, ow, o_row, i_row);
        else
          pool_row<false>(top, bottom, w, 2 * r * w, ow, o_row, nullptr);
      }
    }
  });
}

struct max_pool_2x2_function
    : torch::autograd::Function<max_pool_2x2_function> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& x) {
    auto sizes = x.sizes().vec();
    sizes[2] /= 2;
    sizes[3] /= 2;
    auto out = torch::empty(sizes, x.options());
    auto indices = torch::empty(sizes, x.options().dtype(torch::kInt64));
    pool_planes(x, out, &indices);
    ctx->save_for_backward({x, indices});
    return out;
  }

  static torch::autograd::tensor_list
  backward(torch::autograd::AutogradContext* ctx,
           torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    // LibTorch's own backward, fed the indices it would have chosen.
    return {at::max_pool2d_with_indices_backward(
        grads[0], saved[0], {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, saved[1])};
  }
};

} // namespace

torch::Tensor max_pool_2x2(const torch::Tensor& x) {
  if (!has_fast_path(x))
    return torch::max_pool2d(x, 2);
  if (torch::GradMode::is_enabled() && x.requires_grad())
    return max_pool_2x2_function::apply(x);
  auto sizes = x.sizes().vec();
  sizes[2] /= 2;
  sizes[3] /= 2;
  auto out = torch::empty(sizes, x.options());
  pool_planes(x, out, nullptr);
  return out;
}

} // namespace actortrain
