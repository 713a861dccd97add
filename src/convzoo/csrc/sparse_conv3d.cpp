// Native gather-multiply-accumulate for convzoo's sparse 3-D convolution (S43, inference).
//
// out[m, :] = bias + sum over taps t with table[m, t] < M_in of feats[table[m, t], :] @ weight[t]
//
// feats (M_in, C_in), weight (T, C_in, C_out) and out (M_out, C_out) are contiguous float32; table (M_out, T) int64
// holds each output site's input row per kernel tap, M_in where the tap has no active input (the rulebook's
// neighbour table). Nothing is materialised: each output row accumulates in blocks of up to 64 channels held in
// registers. Two builds of the loop (AVX-512F and portable), chosen at load time; rows are shared among torch's
// intra-op threads.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace {

struct Problem {
  const float* feats;
  const int64_t* table;
  const float* weight;
  const float* bias;  // may be null
  float* out;
  int64_t inputs, taps, in_channels, out_channels;
};

// One output row, channels [o0, o0 + Block): four partial sums (input channels c mod 4) so that 4 Block / 16
// independent FMA chains hide the FMA latency.
template <int Block>
static inline __attribute__((always_inline)) void block(const Problem& p, int64_t m, int64_t o0) {
  float acc[4][Block];
  for (int o = 0; o < Block; ++o) {
    acc[0][o] = p.bias ? p.bias[o0 + o] : 0.0f;
    acc[1][o] = acc[2][o] = acc[3][o] = 0.0f;
  }
  const int64_t* row = p.table + m * p.taps;
  const int64_t cin = p.in_channels, cout = p.out_channels;
  for (int64_t t = 0; t < p.taps; ++t) {
    const int64_t r = row[t];
    if (r >= p.inputs) continue;
    const float* x = p.feats + r * cin;
    const float* w = p.weight + t * cin * cout + o0;
    int64_t c = 0;
    for (; c + 4 <= cin; c += 4) {
      for (int k = 0; k < 4; ++k) {
        const float xv = x[c + k];
        const float* wc = w + (c + k) * cout;
        for (int o = 0; o < Block; ++o) acc[k][o] += xv * wc[o];
      }
    }
    for (; c < cin; ++c) {
      const float xv = x[c];
      const float* wc = w + c * cout;
      for (int o = 0; o < Block; ++o) acc[0][o] += xv * wc[o];
    }
  }
  float* y = p.out + m * cout + o0;
  for (int o = 0; o < Block; ++o) y[o] = (acc[0][o] + acc[1][o]) + (acc[2][o] + acc[3][o]);
}

static inline __attribute__((always_inline)) void rows(const Problem& p, int64_t first, int64_t last) {
  for (int64_t m = first; m < last; ++m) {
    int64_t o0 = 0;
    for (; o0 + 64 <= p.out_channels; o0 += 64) block<64>(p, m, o0);
    for (; o0 + 32 <= p.out_channels; o0 += 32) block<32>(p, m, o0);
    for (; o0 + 16 <= p.out_channels; o0 += 16) block<16>(p, m, o0);
    for (; o0 < p.out_channels; ++o0) block<1>(p, m, o0);
  }
}

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONVZOO_X86 1
__attribute__((target("avx512f,fma"))) void rows_avx512(const Problem& p, int64_t first, int64_t last) {
  rows(p, first, last);
}
#endif

void rows_portable(const Problem& p, int64_t first, int64_t last) { rows(p, first, last); }

using RowsFn = void (*)(const Problem&, int64_t, int64_t);

struct Isa {
  RowsFn fn;
  std::string name;
};

Isa detect() {
#ifdef CONVZOO_X86
  if (__builtin_cpu_supports("avx512f")) return {rows_avx512, "avx512f"};
#endif
  return {rows_portable, "portable"};
}

Isa& current() {
  static Isa isa = detect();
  return isa;
}

std::string isa_name() { return current().name; }

void set_isa(const std::string& name) {
  if (name == "portable") {
    current() = {rows_portable, "portable"};
    return;
  }
  Isa best = detect();
  TORCH_CHECK(name == best.name, "sparse conv3d: unknown or unsupported isa '", name, "' (this CPU: ", best.name,
              ", portable)");
  current() = best;
}

torch::Tensor gather_conv(const torch::Tensor& feats, const torch::Tensor& table, const torch::Tensor& weight,
                          const c10::optional<torch::Tensor>& bias) {
  TORCH_CHECK(feats.dim() == 2 && feats.scalar_type() == torch::kFloat32 && feats.is_contiguous(),
              "sparse conv3d: feats must be contiguous float32 (M_in, C_in)");
  TORCH_CHECK(table.dim() == 2 && table.scalar_type() == torch::kInt64 && table.is_contiguous(),
              "sparse conv3d: table must be contiguous int64 (M_out, T)");
  TORCH_CHECK(weight.dim() == 3 && weight.scalar_type() == torch::kFloat32 && weight.is_contiguous() &&
                  weight.size(0) == table.size(1) && weight.size(1) == feats.size(1),
              "sparse conv3d: weight must be contiguous float32 (T, C_in, C_out)");
  const int64_t out_channels = weight.size(2);
  if (bias.has_value())
    TORCH_CHECK(bias->numel() == out_channels && bias->scalar_type() == torch::kFloat32 && bias->is_contiguous(),
                "sparse conv3d: bias must be contiguous float32 (C_out,)");
  if (table.numel())
    TORCH_CHECK(table.min().item<int64_t>() >= 0 && table.max().item<int64_t>() <= feats.size(0),
                "sparse conv3d: table entries must lie in [0, M_in]");
  auto out = torch::empty({table.size(0), out_channels}, feats.options());
  Problem p{feats.data_ptr<float>(), table.data_ptr<int64_t>(),     weight.data_ptr<float>(),
            bias.has_value() ? bias->data_ptr<float>() : nullptr,   out.data_ptr<float>(),
            feats.size(0),     table.size(1),                       feats.size(1),
            out_channels};
  const RowsFn fn = current().fn;
  at::parallel_for(0, table.size(0), 64, [&](int64_t begin, int64_t end) { fn(p, begin, end); });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "convzoo: fused gather-multiply-accumulate of the sparse 3-D convolution for CPU inference";
  m.def("gather_conv", &gather_conv, "out (M_out, C_out) from feats (M_in, C_in), table (M_out, T), weight (T, C_in, C_out)",
        pybind11::arg("feats"), pybind11::arg("table"), pybind11::arg("weight"), pybind11::arg("bias") = pybind11::none());
  m.def("isa", &isa_name, "the instruction set the kernel runs with");
  m.def("set_isa", &set_isa, "run with 'portable' or this CPU's best instruction set");
}
