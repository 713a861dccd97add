// Native sparse 1x1 (pointwise) convolution for convzoo (S107, Fast Sparse ConvNets, inference).
//
// y[p, o] = bias[o] + sum_{j in row o} values[j] * x[p, cols[j]] for every pixel p, with the weight (C_out, C_in)
// in CSR form (row_ptr (C_out + 1) int64, cols (nnz) int32, values (nnz) float32) and x, y in channels-last
// memory: rows of pixels (P, C_in) and (P, C_out), float32.
//
// The paper's kernel vectorises over pixels with a CHW layout. With channels-last memory the same inner loop is
// obtained per tile of T = 16 V pixels: the tile of x is transposed into a (C_in, T) buffer, every output channel
// accumulates its nonzeros as broadcast(value) * (T pixels of one input channel) into V independent 16-lane
// accumulators, and the (C_out, T) result is transposed back into y. The transposes cost T (C_in + C_out)
// moves per tile against T nnz multiply-adds, which pays at moderate and high sparsity for the wider layers.
//
// Two builds of the tile loop, chosen at load time: AVX-512F (16-lane FMA) and a portable one (the compiler's
// lowering of the same vector code). Tiles are shared among torch's intra-op threads (at::parallel_for).

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

typedef float v16 __attribute__((vector_size(64)));

constexpr int kMaxVectors = 4;  // pixels per tile: 16 x V, V <= 4

struct Problem {
  const float* x;
  int64_t pixels, in_channels, out_channels;
  const int64_t* row_ptr;
  const int32_t* cols;
  const float* values;
  const float* bias;  // may be null
  float* y;
};

// One tile of `valid` (<= 16 V) pixels starting at p0; xt and yt are 64-byte aligned scratch buffers.
template <int V>
static inline __attribute__((always_inline)) void tile(const Problem& pr, int64_t p0, int64_t valid, float* xt,
                                                        float* yt) {
  constexpr int T = 16 * V;
  const int64_t cin = pr.in_channels, cout = pr.out_channels;
  if (valid < T) std::memset(xt, 0, sizeof(float) * cin * T);
  for (int64_t t = 0; t < valid; ++t) {
    const float* row = pr.x + (p0 + t) * cin;
    for (int64_t k = 0; k < cin; ++k) xt[k * T + t] = row[k];
  }
  for (int64_t o = 0; o < cout; ++o) {
    v16 acc[V];
    const float b = pr.bias ? pr.bias[o] : 0.0f;
    for (int v = 0; v < V; ++v) acc[v] = (v16){} + b;
    for (int64_t j = pr.row_ptr[o]; j < pr.row_ptr[o + 1]; ++j) {
      const v16* src = reinterpret_cast<const v16*>(xt + static_cast<int64_t>(pr.cols[j]) * T);
      const float w = pr.values[j];
      for (int v = 0; v < V; ++v) acc[v] += w * src[v];
    }
    v16* dst = reinterpret_cast<v16*>(yt + o * T);
    for (int v = 0; v < V; ++v) dst[v] = acc[v];
  }
  for (int64_t t = 0; t < valid; ++t) {
    float* row = pr.y + (p0 + t) * cout;
    for (int64_t o = 0; o < cout; ++o) row[o] = yt[o * T + t];
  }
}

template <int V>
static inline __attribute__((always_inline)) void tiles(const Problem& pr, int64_t first, int64_t last, float* xt,
                                                         float* yt) {
  constexpr int T = 16 * V;
  for (int64_t p0 = first; p0 < last; p0 += T) tile<V>(pr, p0, std::min<int64_t>(T, last - p0), xt, yt);
}

// Pixels [first, last): full tiles of 16 kMaxVectors pixels, then one tile with the fewest vectors that hold the rest.
static inline __attribute__((always_inline)) void run_range(const Problem& pr, int64_t first, int64_t last, float* xt,
                                                             float* yt) {
  constexpr int T = 16 * kMaxVectors;
  const int64_t full = first + (last - first) / T * T;
  tiles<kMaxVectors>(pr, first, full, xt, yt);
  const int64_t rest = last - full;
  if (rest > 48) tile<4>(pr, full, rest, xt, yt);
  else if (rest > 32) tile<3>(pr, full, rest, xt, yt);
  else if (rest > 16) tile<2>(pr, full, rest, xt, yt);
  else if (rest > 0) tile<1>(pr, full, rest, xt, yt);
}

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONVZOO_X86 1
#include <immintrin.h>
#define CONVZOO_AVX512 __attribute__((target("avx512f")))

// dst[i * dst_stride + j] = src[j * src_stride + i] for a 16 x 16 block of floats.
CONVZOO_AVX512 static inline void transpose16(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; ++i) {  // within 128-bit lanes: pairs of rows interleaved
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int k = 0; k < 4; ++k) {  // within 128-bit lanes: column m of rows 4k..4k+3 in r[4k + m]
    const __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
    r[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int m = 0; m < 4; ++m) {  // across lanes: column 4L + m gathers lane L of r[m], r[4+m], r[8+m], r[12+m]
    const __m512 v0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88), v1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD);
    const __m512 w0 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
    _mm512_storeu_ps(dst + (m)*dst_stride, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_storeu_ps(dst + (4 + m) * dst_stride, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_storeu_ps(dst + (8 + m) * dst_stride, _mm512_shuffle_f32x4(v0, w0, 0xDD));
    _mm512_storeu_ps(dst + (12 + m) * dst_stride, _mm512_shuffle_f32x4(v1, w1, 0xDD));
  }
}

// rows x cols (row stride src_stride) -> cols x rows (row stride dst_stride): 16 x 16 blocks, scalar edges.
CONVZOO_AVX512 static inline void transpose(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
                                            int64_t rows, int64_t cols) {
  const int64_t rows16 = rows / 16 * 16, cols16 = cols / 16 * 16;
  for (int64_t i = 0; i < rows16; i += 16)
    for (int64_t j = 0; j < cols16; j += 16) transpose16(src + i * src_stride + j, src_stride, dst + j * dst_stride + i,
                                                         dst_stride);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = (i < rows16 ? cols16 : 0); j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

template <int V>
CONVZOO_AVX512 static void tile_avx512(const Problem& pr, int64_t p0, int64_t valid, float* xt, float* yt) {
  constexpr int T = 16 * V;
  const int64_t cin = pr.in_channels, cout = pr.out_channels;
  if (valid < T) std::memset(xt, 0, sizeof(float) * cin * T);
  transpose(pr.x + p0 * cin, cin, xt, T, valid, cin);  // (valid, C_in) -> (C_in, T)
  const int64_t* rp = pr.row_ptr;
  int64_t o = 0;
  for (; o + 1 < cout; o += 2) {  // two output channels at a time: 2 V independent accumulators
    __m512 a[V], b[V];
    const __m512 ba = _mm512_set1_ps(pr.bias ? pr.bias[o] : 0.0f), bb = _mm512_set1_ps(pr.bias ? pr.bias[o + 1] : 0.0f);
    for (int v = 0; v < V; ++v) a[v] = ba, b[v] = bb;
    int64_t ja = rp[o], jb = rp[o + 1];
    const int64_t ea = rp[o + 1], eb = rp[o + 2];
    for (; ja < ea && jb < eb; ++ja, ++jb) {
      const float* sa = xt + static_cast<int64_t>(pr.cols[ja]) * T;
      const float* sb = xt + static_cast<int64_t>(pr.cols[jb]) * T;
      const __m512 wa = _mm512_set1_ps(pr.values[ja]), wb = _mm512_set1_ps(pr.values[jb]);
      for (int v = 0; v < V; ++v) {
        a[v] = _mm512_fmadd_ps(wa, _mm512_load_ps(sa + 16 * v), a[v]);
        b[v] = _mm512_fmadd_ps(wb, _mm512_load_ps(sb + 16 * v), b[v]);
      }
    }
    for (; ja < ea; ++ja) {
      const float* sa = xt + static_cast<int64_t>(pr.cols[ja]) * T;
      const __m512 wa = _mm512_set1_ps(pr.values[ja]);
      for (int v = 0; v < V; ++v) a[v] = _mm512_fmadd_ps(wa, _mm512_load_ps(sa + 16 * v), a[v]);
    }
    for (; jb < eb; ++jb) {
      const float* sb = xt + static_cast<int64_t>(pr.cols[jb]) * T;
      const __m512 wb = _mm512_set1_ps(pr.values[jb]);
      for (int v = 0; v < V; ++v) b[v] = _mm512_fmadd_ps(wb, _mm512_load_ps(sb + 16 * v), b[v]);
    }
    for (int v = 0; v < V; ++v) {
      _mm512_store_ps(yt + o * T + 16 * v, a[v]);
      _mm512_store_ps(yt + (o + 1) * T + 16 * v, b[v]);
    }
  }
  for (; o < cout; ++o) {
    __m512 a[V];
    for (int v = 0; v < V; ++v) a[v] = _mm512_set1_ps(pr.bias ? pr.bias[o] : 0.0f);
    for (int64_t j = rp[o]; j < rp[o + 1]; ++j) {
      const float* sa = xt + static_cast<int64_t>(pr.cols[j]) * T;
      const __m512 w = _mm512_set1_ps(pr.values[j]);
      for (int v = 0; v < V; ++v) a[v] = _mm512_fmadd_ps(w, _mm512_load_ps(sa + 16 * v), a[v]);
    }
    for (int v = 0; v < V; ++v) _mm512_store_ps(yt + o * T + 16 * v, a[v]);
  }
  transpose(yt, T, pr.y + p0 * cout, cout, cout, valid);  // (C_out, T) -> (valid, C_out)
}

CONVZOO_AVX512 void range_avx512(const Problem& pr, int64_t first, int64_t last, float* xt, float* yt) {
  constexpr int T = 16 * kMaxVectors;
  int64_t p0 = first;
  for (; p0 + T <= last; p0 += T) tile_avx512<kMaxVectors>(pr, p0, T, xt, yt);
  const int64_t rest = last - p0;
  if (rest > 48) tile_avx512<4>(pr, p0, rest, xt, yt);
  else if (rest > 32) tile_avx512<3>(pr, p0, rest, xt, yt);
  else if (rest > 16) tile_avx512<2>(pr, p0, rest, xt, yt);
  else if (rest > 0) tile_avx512<1>(pr, p0, rest, xt, yt);
}
#endif

void range_portable(const Problem& pr, int64_t first, int64_t last, float* xt, float* yt) {
  run_range(pr, first, last, xt, yt);
}

using RangeFn = void (*)(const Problem&, int64_t, int64_t, float*, float*);

struct Isa {
  RangeFn fn;
  std::string name;
};

Isa detect() {
#ifdef CONVZOO_X86
  if (__builtin_cpu_supports("avx512f")) return {range_avx512, "avx512f"};
#endif
  return {range_portable, "portable"};
}

Isa& current() {
  static Isa isa = detect();
  return isa;
}

std::string isa_name() { return current().name; }

void set_isa(const std::string& name) {
  if (name == "portable") {
    current() = {range_portable, "portable"};
    return;
  }
  Isa best = detect();
  if (name == best.name) {
    current() = best;
    return;
  }
  TORCH_CHECK(false, "sparse pointwise: unknown or unsupported isa '", name, "' (this CPU: ", best.name,
              ", portable)");
}

torch::Tensor pointwise(const torch::Tensor& x, const torch::Tensor& row_ptr, const torch::Tensor& cols,
                        const torch::Tensor& values, const c10::optional<torch::Tensor>& bias) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.is_contiguous(),
              "sparse pointwise: x must be contiguous float32 (pixels, C_in), got ", x.sizes(), " ", x.scalar_type());
  TORCH_CHECK(row_ptr.dim() == 1 && row_ptr.scalar_type() == torch::kInt64 && row_ptr.is_contiguous(),
              "sparse pointwise: row_ptr must be contiguous int64 (C_out + 1,)");
  TORCH_CHECK(cols.scalar_type() == torch::kInt32 && values.scalar_type() == torch::kFloat32 &&
                  cols.is_contiguous() && values.is_contiguous() && cols.numel() == values.numel(),
              "sparse pointwise: cols (nnz,) int32 and values (nnz,) float32, contiguous");
  const int64_t out_channels = row_ptr.numel() - 1;
  TORCH_CHECK(out_channels >= 1, "sparse pointwise: row_ptr needs C_out + 1 >= 2 entries");
  if (bias.has_value())
    TORCH_CHECK(bias->numel() == out_channels && bias->scalar_type() == torch::kFloat32 && bias->is_contiguous(),
                "sparse pointwise: bias must be contiguous float32 (C_out,)");
  auto y = torch::empty({x.size(0), out_channels}, x.options());
  Problem pr{x.data_ptr<float>(),
             x.size(0),
             x.size(1),
             out_channels,
             row_ptr.data_ptr<int64_t>(),
             cols.data_ptr<int32_t>(),
             values.data_ptr<float>(),
             bias.has_value() ? bias->data_ptr<float>() : nullptr,
             y.data_ptr<float>()};
  const RangeFn fn = current().fn;
  constexpr int64_t T = 16 * kMaxVectors;
  const int64_t num_tiles = (pr.pixels + T - 1) / T;
  at::parallel_for(0, num_tiles, 1, [&](int64_t begin, int64_t end) {
    const size_t floats = (static_cast<size_t>(std::max(pr.in_channels, pr.out_channels)) * T + 15) / 16 * 16;
    float* xt = static_cast<float*>(std::aligned_alloc(64, floats * sizeof(float)));
    float* yt = static_cast<float*>(std::aligned_alloc(64, floats * sizeof(float)));
    fn(pr, begin * T, std::min(end * T, pr.pixels), xt, yt);
    std::free(xt);
    std::free(yt);
  });
  return y;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "convzoo: sparse (CSR) 1x1 convolution over channels-last pixel rows for CPU inference";
  m.def("pointwise", &pointwise, "y (P, C_out) = x (P, C_in) @ W^T + bias with W in CSR form", pybind11::arg("x"),
        pybind11::arg("row_ptr"), pybind11::arg("cols"), pybind11::arg("values"),
        pybind11::arg("bias") = pybind11::none());
  m.def("isa", &isa_name, "the instruction set the kernel runs with");
  m.def("set_isa", &set_isa, "run with 'portable' or this CPU's best instruction set");
}
