// Native bit-packed binary convolution for convzoo (S8, XNOR-Net inference).
//
// Layout and conventions are those of convzoo/ops/binary_packed.py:
//   * signs are packed along channels into 64-bit words, bit b of word w holding channel 64 w + b
//     (1 for x >= 0, i.e. +1; 0 for -1); the bits past C_in in the last word are 0;
//   * "same" padding: a padded position is neither +1 nor -1 and contributes nothing;
//   * per output position and channel: dot = C_in * valid_taps - 2 * popcount(a XOR w) over valid taps.
//
// Padding is realised by copying the input words into a zero-padded buffer: a padded tap then adds
// popcount(0 XOR w) = popcount(w) mismatches, which the border positions subtract again, so the inner
// loops run without bounds checks. Inputs are (N, D, H, W, words) and weights (C_out, kd, kh, kw, words);
// 1-d and 2-d convolutions come in with unit leading dimensions.
//
// Two inner kernels, chosen once at load time from the CPU's features: AVX-512 with VPOPCNTDQ (eight
// 64-bit popcounts per instruction, 32 output channels by 4 output positions per register block) and a
// portable one (the compiler's popcount builtin; compiled for the POPCNT instruction on x86 CPUs that
// have it). Rows of the output are shared among torch's intra-op threads (at::parallel_for).

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#if defined(__GNUC__) || defined(__clang__)
#define CONVZOO_X86 1
#include <immintrin.h>
#endif
#endif

namespace {

constexpr int64_t kWordBits = 64;
constexpr int64_t kBlockChannels = 32;  // output channels per register block (4 x 8 lanes)
constexpr int kBlockPositions = 4;      // output positions per register block

struct Geometry {
  int64_t n, d, h, w, words;         // input (unpadded)
  int64_t kd, kh, kw;                // kernel
  int64_t pd, ph, pw;                // padding
  int64_t sd, sh, sw;                // stride
  int64_t od, oh, ow;                // output
  int64_t dp, hp, wp;                // padded input
  int64_t out_channels, padded_channels, in_channels;
  int64_t taps() const { return kd * kh * kw; }
};

// Valid tap range [lo, hi) along one axis for output coordinate o.
inline void tap_range(int64_t o, int64_t stride, int64_t pad, int64_t size, int64_t kernel, int64_t* lo, int64_t* hi) {
  const int64_t start = o * stride - pad;
  *lo = std::max<int64_t>(0, -start);
  *hi = std::min<int64_t>(kernel, size - start);
}

// Writes the result for `count` channels [c0, c0 + count) at one output position. `mismatch` holds the raw
// mismatch counts over all taps (padded ones included); `pop_weights` is (taps, padded_channels).
struct Finisher {
  const Geometry& g;
  const int32_t* pop_weights;
  const float* alpha;   // (C_out) or null: integer output
  const float* scale;   // (N, od, oh, ow) or null
  const float* bias;    // (C_out) or null
  int64_t* out_int;     // (N, od, oh, ow, C_out)
  float* out_float;

  void operator()(int64_t n, int64_t z, int64_t y, int64_t x, int64_t c0, int64_t count, const int64_t* mismatch) const {
    int64_t zlo, zhi, ylo, yhi, xlo, xhi;
    tap_range(z, g.sd, g.pd, g.d, g.kd, &zlo, &zhi);
    tap_range(y, g.sh, g.ph, g.h, g.kh, &ylo, &yhi);
    tap_range(x, g.sw, g.pw, g.w, g.kw, &xlo, &xhi);
    const int64_t valid = std::max<int64_t>(0, zhi - zlo) * std::max<int64_t>(0, yhi - ylo) * std::max<int64_t>(0, xhi - xlo);
    const bool border = valid != g.taps();
    std::array<int64_t, kBlockChannels> padded_mismatch;
    padded_mismatch.fill(0);
    if (border) {  // mismatches counted at padded taps: popcount(w) each
      for (int64_t a = 0; a < g.kd; ++a)
        for (int64_t b = 0; b < g.kh; ++b)
          for (int64_t c = 0; c < g.kw; ++c) {
            if (a >= zlo && a < zhi && b >= ylo && b < yhi && c >= xlo && c < xhi) continue;
            const int32_t* row = pop_weights + ((a * g.kh + b) * g.kw + c) * g.padded_channels + c0;
            for (int64_t j = 0; j < count; ++j) padded_mismatch[j] += row[j];
          }
    }
    const int64_t position = ((n * g.od + z) * g.oh + y) * g.ow + x;
    const int64_t offset = position * g.out_channels + c0;
    if (alpha == nullptr) {
      for (int64_t j = 0; j < count; ++j)
        out_int[offset + j] = valid * g.in_channels - 2 * (mismatch[j] - padded_mismatch[j]);
      return;
    }
    const float k = scale != nullptr ? scale[position] : 1.0f;
    for (int64_t j = 0; j < count; ++j) {
      const int64_t dot = valid * g.in_channels - 2 * (mismatch[j] - padded_mismatch[j]);
      float value = static_cast<float>(dot) * alpha[c0 + j];
      if (scale != nullptr) value = value * k;
      if (bias != nullptr) value = value + bias[c0 + j];
      out_float[offset + j] = value;
    }
  }
};

#if defined(__GNUC__) || defined(__clang__)
#define CONVZOO_INLINE inline __attribute__((always_inline))
#else
#define CONVZOO_INLINE inline
#endif

// Scalar popcount: inlined into each caller, so it compiles to POPCNT where the caller targets it.
CONVZOO_INLINE int64_t popcount64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(v);
#else
  int64_t count = 0;
  for (; v != 0; v &= v - 1) ++count;
  return count;
#endif
}

// An output position (n, z, y, x) and where its window starts in the padded input words.
struct Position {
  int64_t n, z, y, x;
  int64_t flat;  // ((n * od + z) * oh + y) * ow + x
};

inline Position position_at(const Geometry& g, int64_t flat) {
  Position p;
  p.flat = flat;
  p.x = flat % g.ow;
  p.y = (flat / g.ow) % g.oh;
  p.z = (flat / (g.ow * g.oh)) % g.od;
  p.n = flat / (g.ow * g.oh * g.od);
  return p;
}

// Padded input words at tap (a, b, 0) of position p.
inline const uint64_t* window_row(const Geometry& g, const uint64_t* input, const Position& p, int64_t a, int64_t b) {
  return input + ((((p.n * g.dp + p.z * g.sd + a) * g.hp + p.y * g.sh + b) * g.wp) + p.x * g.sw) * g.words;
}

// Portable kernel: one output position at a time, 32 channels per block, scalar popcounts.
CONVZOO_INLINE void positions_portable(const Geometry& g, const uint64_t* input, const uint64_t* weights,
                                       const Finisher& finish, int64_t begin, int64_t end) {
  std::array<int64_t, kBlockChannels> mismatch;
  for (int64_t flat = begin; flat < end; ++flat) {
    const Position p = position_at(g, flat);
    for (int64_t c0 = 0; c0 < g.out_channels; c0 += kBlockChannels) {
      const int64_t count = std::min<int64_t>(kBlockChannels, g.out_channels - c0);
      mismatch.fill(0);
      for (int64_t a = 0; a < g.kd; ++a)
        for (int64_t b = 0; b < g.kh; ++b) {
          const uint64_t* row = window_row(g, input, p, a, b);
          for (int64_t c = 0; c < g.kw; ++c) {
            const uint64_t* act = row + c * g.words;
            const uint64_t* wt = weights + (((a * g.kh + b) * g.kw + c) * g.words) * g.padded_channels + c0;
            for (int64_t word = 0; word < g.words; ++word) {
              const uint64_t v = act[word];
              const uint64_t* wrow = wt + word * g.padded_channels;
              for (int64_t j = 0; j < kBlockChannels; ++j) mismatch[j] += popcount64(v ^ wrow[j]);
            }
          }
        }
      finish(p.n, p.z, p.y, p.x, c0, count, mismatch.data());
    }
  }
}

void positions_generic(const Geometry& g, const uint64_t* input, const uint64_t* weights, const Finisher& finish,
                       int64_t begin, int64_t end) {
  positions_portable(g, input, weights, finish, begin, end);
}

#ifdef CONVZOO_X86
__attribute__((target("popcnt"))) void positions_popcnt(const Geometry& g, const uint64_t* input,
                                                        const uint64_t* weights, const Finisher& finish,
                                                        int64_t begin, int64_t end) {
  positions_portable(g, input, weights, finish, begin, end);
}

// Whether every tap of output coordinate o falls inside the input along one axis.
inline bool inside(int64_t o, int64_t stride, int64_t pad, int64_t size, int64_t kernel) {
  const int64_t start = o * stride - pad;
  return start >= 0 && start + kernel <= size;
}

#define CONVZOO_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512vpopcntdq")))

// AVX-512 kernel: P output positions (consecutive in the flat output, across rows) x 32 channels per register
// block (4P accumulators of 8 x int64). Interior positions are finished in vector registers; border ones go
// through the scalar Finisher.
template <int P>
CONVZOO_AVX512 inline void block_avx512(const Geometry& g, const uint64_t* input, const uint64_t* weights,
                                        const Finisher& finish, int64_t first) {
  alignas(64) int64_t mismatch[kBlockChannels];
  Position pos[P];
  bool interior[P];
  for (int p = 0; p < P; ++p) {
    pos[p] = position_at(g, first + p);
    interior[p] = inside(pos[p].z, g.sd, g.pd, g.d, g.kd) && inside(pos[p].y, g.sh, g.ph, g.h, g.kh) &&
                  inside(pos[p].x, g.sw, g.pw, g.w, g.kw);
  }
  const __m512i full = _mm512_set1_epi64(g.taps() * g.in_channels);
  for (int64_t c0 = 0; c0 < g.padded_channels; c0 += kBlockChannels) {
    __m512i acc[P][4];
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < 4; ++v) acc[p][v] = _mm512_setzero_si512();
    for (int64_t a = 0; a < g.kd; ++a)
      for (int64_t b = 0; b < g.kh; ++b) {
        const uint64_t* row[P];
        for (int p = 0; p < P; ++p) row[p] = window_row(g, input, pos[p], a, b);
        for (int64_t c = 0; c < g.kw; ++c) {
          const uint64_t* wt = weights + (((a * g.kh + b) * g.kw + c) * g.words) * g.padded_channels + c0;
          for (int64_t word = 0; word < g.words; ++word) {
            const uint64_t* wrow = wt + word * g.padded_channels;
            const __m512i w0 = _mm512_loadu_si512(wrow);
            const __m512i w1 = _mm512_loadu_si512(wrow + 8);
            const __m512i w2 = _mm512_loadu_si512(wrow + 16);
            const __m512i w3 = _mm512_loadu_si512(wrow + 24);
            for (int p = 0; p < P; ++p) {
              const __m512i v = _mm512_set1_epi64(static_cast<long long>(row[p][c * g.words + word]));
              acc[p][0] = _mm512_add_epi64(acc[p][0], _mm512_popcnt_epi64(_mm512_xor_si512(v, w0)));
              acc[p][1] = _mm512_add_epi64(acc[p][1], _mm512_popcnt_epi64(_mm512_xor_si512(v, w1)));
              acc[p][2] = _mm512_add_epi64(acc[p][2], _mm512_popcnt_epi64(_mm512_xor_si512(v, w2)));
              acc[p][3] = _mm512_add_epi64(acc[p][3], _mm512_popcnt_epi64(_mm512_xor_si512(v, w3)));
            }
          }
        }
      }
    const int64_t count = std::min<int64_t>(kBlockChannels, g.out_channels - c0);
    for (int p = 0; p < P; ++p) {
      if (!interior[p]) {
        for (int v = 0; v < 4; ++v) _mm512_store_si512(mismatch + 8 * v, acc[p][v]);
        finish(pos[p].n, pos[p].z, pos[p].y, pos[p].x, c0, count, mismatch);
        continue;
      }
      const int64_t offset = pos[p].flat * g.out_channels + c0;
      const __m256 k = _mm256_set1_ps(finish.scale != nullptr ? finish.scale[pos[p].flat] : 1.0f);
      for (int v = 0; v < 4 && 8 * v < count; ++v) {
        const int64_t lanes = std::min<int64_t>(8, count - 8 * v);
        const __mmask8 mask = static_cast<__mmask8>((1u << lanes) - 1u);
        const __m512i dot = _mm512_sub_epi64(full, _mm512_slli_epi64(acc[p][v], 1));
        if (finish.alpha == nullptr) {
          _mm512_mask_storeu_epi64(finish.out_int + offset + 8 * v, mask, dot);
          continue;
        }
        // the same float operations in the same order as the scalar Finisher and the PyTorch path
        __m256 value = _mm256_mul_ps(_mm512_cvtepi64_ps(dot), _mm256_maskz_loadu_ps(mask, finish.alpha + c0 + 8 * v));
        if (finish.scale != nullptr) value = _mm256_mul_ps(value, k);
        if (finish.bias != nullptr) value = _mm256_add_ps(value, _mm256_maskz_loadu_ps(mask, finish.bias + c0 + 8 * v));
        _mm256_mask_storeu_ps(finish.out_float + offset + 8 * v, mask, value);
      }
    }
  }
}

CONVZOO_AVX512 void positions_avx512(const Geometry& g, const uint64_t* input, const uint64_t* weights,
                                     const Finisher& finish, int64_t begin, int64_t end) {
  int64_t flat = begin;
  for (; flat + kBlockPositions <= end; flat += kBlockPositions)
    block_avx512<kBlockPositions>(g, input, weights, finish, flat);
  for (; flat < end; ++flat) block_avx512<1>(g, input, weights, finish, flat);
}
#endif

// Computes the flat output positions [begin, end).
using PositionsFn = void (*)(const Geometry&, const uint64_t*, const uint64_t*, const Finisher&, int64_t, int64_t);

struct Dispatch {
  PositionsFn positions;
  bool avx512;
  std::string name;
};

std::vector<Dispatch> supported() {
  std::vector<Dispatch> found;
#ifdef CONVZOO_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512vpopcntdq"))
    found.push_back({positions_avx512, true, "avx512-vpopcntdq"});
  if (__builtin_cpu_supports("popcnt")) found.push_back({positions_popcnt, false, "popcnt"});
#endif
  found.push_back({positions_generic, false, "portable"});
  return found;
}

// The fastest kernel this CPU supports, unless set_isa chose another.
Dispatch& dispatch() {
  static Dispatch chosen = supported().front();
  return chosen;
}

void check(bool condition, const std::string& message) { TORCH_CHECK(condition, "binary native: ", message); }

// Weights (C_out, kd, kh, kw, words) re-laid out for the kernels: (taps, words, C_out padded to 32) and their
// popcounts per tap (taps, C_out padded), int32. A module computes this once and passes it to every conv call.
std::vector<torch::Tensor> prepare(const torch::Tensor& w_words) {
  check(w_words.dim() == 5 && w_words.scalar_type() == torch::kInt64 && w_words.device().is_cpu(),
        "w_words must be int64 (C_out, kd, kh, kw, words) on the CPU");
  const int64_t out_channels = w_words.size(0), words = w_words.size(4);
  const int64_t taps = w_words.size(1) * w_words.size(2) * w_words.size(3);
  const int64_t padded = (out_channels + kBlockChannels - 1) / kBlockChannels * kBlockChannels;
  auto wt = torch::zeros({taps, words, padded}, w_words.options());
  wt.narrow(2, 0, out_channels).copy_(w_words.reshape({out_channels, taps, words}).permute({1, 2, 0}));
  auto pop = torch::zeros({taps, padded}, torch::kInt32);
  const auto* src = reinterpret_cast<const uint64_t*>(wt.data_ptr<int64_t>());
  auto* dst = pop.data_ptr<int32_t>();
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t word = 0; word < words; ++word)
      for (int64_t c = 0; c < padded; ++c) dst[t * padded + c] += popcount64(src[(t * words + word) * padded + c]);
  return {wt, pop};
}

torch::Tensor conv(const torch::Tensor& x_words, const torch::Tensor& w_words, int64_t in_channels,
                   std::vector<int64_t> stride, const c10::optional<torch::Tensor>& alpha,
                   const c10::optional<torch::Tensor>& scale, const c10::optional<torch::Tensor>& bias,
                   const c10::optional<std::vector<torch::Tensor>>& prepared) {
  check(x_words.dim() == 5 && w_words.dim() == 5, "x_words must be (N, D, H, W, words) and w_words (C_out, kd, kh, kw, words)");
  check(x_words.scalar_type() == torch::kInt64 && w_words.scalar_type() == torch::kInt64, "words must be int64");
  check(x_words.device().is_cpu() && w_words.device().is_cpu(), "words must be on the CPU");
  check(stride.size() == 3, "stride must have 3 entries (d, h, w)");
  Geometry g{};
  g.n = x_words.size(0), g.d = x_words.size(1), g.h = x_words.size(2), g.w = x_words.size(3), g.words = x_words.size(4);
  g.kd = w_words.size(1), g.kh = w_words.size(2), g.kw = w_words.size(3);
  check(w_words.size(4) == g.words, "x_words and w_words must have the same number of words per position");
  check(g.kd % 2 == 1 && g.kh % 2 == 1 && g.kw % 2 == 1, "kernel sizes must be odd");
  check(in_channels > 0 && in_channels <= g.words * kWordBits && in_channels > (g.words - 1) * kWordBits,
        "in_channels does not match the number of words");
  g.sd = stride[0], g.sh = stride[1], g.sw = stride[2];
  check(g.sd > 0 && g.sh > 0 && g.sw > 0, "strides must be positive");
  g.pd = g.kd / 2, g.ph = g.kh / 2, g.pw = g.kw / 2;
  g.od = (g.d + g.sd - 1) / g.sd, g.oh = (g.h + g.sh - 1) / g.sh, g.ow = (g.w + g.sw - 1) / g.sw;
  // enough right/bottom padding for every tap of every output position
  g.dp = std::max(g.d + 2 * g.pd, (g.od - 1) * g.sd + g.kd);
  g.hp = std::max(g.h + 2 * g.ph, (g.oh - 1) * g.sh + g.kh);
  g.wp = std::max(g.w + 2 * g.pw, (g.ow - 1) * g.sw + g.kw);
  g.out_channels = w_words.size(0), g.in_channels = in_channels;
  g.padded_channels = (g.out_channels + kBlockChannels - 1) / kBlockChannels * kBlockChannels;

  // zero-padded input words
  auto padded = torch::zeros({g.n, g.dp, g.hp, g.wp, g.words}, x_words.options());
  padded.narrow(1, g.pd, g.d).narrow(2, g.ph, g.h).narrow(3, g.pw, g.w).copy_(x_words);
  // weights as (taps, words, padded_channels) and their popcounts as (taps, padded_channels): given, or made now
  torch::Tensor wt, pop;
  if (prepared.has_value()) {
    check(prepared->size() == 2, "prepared must be the pair prepare(w_words) returns");
    wt = (*prepared)[0], pop = (*prepared)[1];
    check(wt.scalar_type() == torch::kInt64 && wt.is_contiguous() && wt.dim() == 3 && wt.size(0) == g.taps() &&
              wt.size(1) == g.words && wt.size(2) == g.padded_channels,
          "prepared weights do not match w_words (use prepare(w_words))");
    check(pop.scalar_type() == torch::kInt32 && pop.is_contiguous() && pop.dim() == 2 && pop.size(0) == g.taps() &&
              pop.size(1) == g.padded_channels,
          "prepared popcounts do not match w_words (use prepare(w_words))");
  } else {
    auto made = prepare(w_words);
    wt = made[0], pop = made[1];
  }

  Finisher finish{g, pop.data_ptr<int32_t>(), nullptr, nullptr, nullptr, nullptr, nullptr};
  torch::Tensor alpha_c, scale_c, bias_c, out;
  if (alpha.has_value()) {
    alpha_c = alpha->to(torch::kFloat32).contiguous();
    check(alpha_c.numel() == g.out_channels, "alpha must have one entry per output channel");
    finish.alpha = alpha_c.data_ptr<float>();
    if (scale.has_value()) {
      scale_c = scale->to(torch::kFloat32).contiguous();
      check(scale_c.numel() == g.n * g.od * g.oh * g.ow, "scale must be (N, *output size)");
      finish.scale = scale_c.data_ptr<float>();
    }
    if (bias.has_value()) {
      bias_c = bias->to(torch::kFloat32).contiguous();
      check(bias_c.numel() == g.out_channels, "bias must have one entry per output channel");
      finish.bias = bias_c.data_ptr<float>();
    }
    out = torch::empty({g.n, g.od, g.oh, g.ow, g.out_channels}, torch::kFloat32);
    finish.out_float = out.data_ptr<float>();
  } else {
    out = torch::empty({g.n, g.od, g.oh, g.ow, g.out_channels}, torch::kInt64);
    finish.out_int = out.data_ptr<int64_t>();
  }
  const auto* input = reinterpret_cast<const uint64_t*>(padded.data_ptr<int64_t>());
  const auto* weights = reinterpret_cast<const uint64_t*>(wt.data_ptr<int64_t>());
  const PositionsFn positions = dispatch().positions;
  const int64_t total = g.n * g.od * g.oh * g.ow, blocks = (total + kBlockPositions - 1) / kBlockPositions;
  // tasks are whole register blocks of positions; grain: about 64 positions
  at::parallel_for(0, blocks, 16, [&](int64_t begin, int64_t end) {
    positions(g, input, weights, finish, begin * kBlockPositions, std::min(total, end * kBlockPositions));
  });
  return out;
}

// Signs of y = x * scale + shift (per channel; a folded BatchNorm, or 1 and 0) for x (M, C) float32, packed per
// row: words (M, ceil(C / 64)) and mean |y| per row (M). The product and the sum are rounded separately (no FMA),
// as PyTorch's x * scale + shift is.
void pack_rows_generic(const float* x, const float* scale, const float* shift, int64_t channels, int64_t words,
                       uint64_t* out, float* mean_abs, int64_t begin, int64_t end) {
  for (int64_t m = begin; m < end; ++m) {
    const float* row = x + m * channels;
    float total = 0.0f;
    for (int64_t word = 0; word < words; ++word) {
      uint64_t bits = 0;
      const int64_t first = word * kWordBits, last = std::min(channels, first + kWordBits);
      for (int64_t c = first; c < last; ++c) {
        const float product = row[c] * scale[c];
        const float v = product + shift[c];
        bits |= static_cast<uint64_t>(v >= 0.0f) << (c - first);
        total += std::fabs(v);
      }
      out[m * words + word] = bits;
    }
    mean_abs[m] = total / static_cast<float>(channels);
  }
}

#ifdef CONVZOO_X86
__attribute__((target("avx512f"))) void pack_rows_avx512(const float* x, const float* scale, const float* shift,
                                                         int64_t channels, int64_t words, uint64_t* out,
                                                         float* mean_abs, int64_t begin, int64_t end) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  for (int64_t m = begin; m < end; ++m) {
    const float* row = x + m * channels;
    __m512 total = _mm512_setzero_ps();
    for (int64_t word = 0; word < words; ++word) {
      uint64_t bits = 0;
      for (int64_t part = 0; part < 4; ++part) {
        const int64_t first = word * kWordBits + part * 16;
        if (first >= channels) break;
        const int64_t count = std::min<int64_t>(16, channels - first);
        const __mmask16 lanes = static_cast<__mmask16>(count == 16 ? 0xffff : (1u << count) - 1u);
        const __m512 product = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, row + first),
                                             _mm512_maskz_loadu_ps(lanes, scale + first));
        const __m512 v = _mm512_add_ps(product, _mm512_maskz_loadu_ps(lanes, shift + first));
        const __mmask16 positive = _mm512_mask_cmp_ps_mask(lanes, v, zero, _CMP_GE_OQ);
        bits |= static_cast<uint64_t>(positive) << (part * 16);
        total = _mm512_add_ps(total, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask)));
      }
      out[m * words + word] = bits;
    }
    mean_abs[m] = _mm512_reduce_add_ps(total) / static_cast<float>(channels);
  }
}
#endif

// As pack_rows, for x (N, C, P) float32 (channel planes), packed per position: words (N, P, W) and mean |y|
// (N, P). Works on blocks of positions [p0, p1) of sample n, reading each channel plane contiguously.
void pack_planes_generic(const float* x, const float* scale, const float* shift, int64_t channels, int64_t positions,
                         int64_t words, uint64_t* out, float* mean_abs, int64_t n, int64_t p0, int64_t p1) {
  constexpr int64_t kBlock = 64;
  for (int64_t start = p0; start < p1; start += kBlock) {
    const int64_t len = std::min(kBlock, p1 - start);
    std::array<float, kBlock> total;
    total.fill(0.0f);
    for (int64_t word = 0; word < words; ++word) {
      std::array<uint64_t, kBlock> bits;
      bits.fill(0);
      const int64_t first = word * kWordBits, last = std::min(channels, first + kWordBits);
      for (int64_t c = first; c < last; ++c) {
        const float* plane = x + (n * channels + c) * positions + start;
        const uint64_t bit = uint64_t{1} << (c - first);
        for (int64_t i = 0; i < len; ++i) {
          const float product = plane[i] * scale[c];
          const float v = product + shift[c];
          bits[i] |= v >= 0.0f ? bit : 0;
          total[i] += std::fabs(v);
        }
      }
      for (int64_t i = 0; i < len; ++i) out[(n * positions + start + i) * words + word] = bits[i];
    }
    for (int64_t i = 0; i < len; ++i) mean_abs[n * positions + start + i] = total[i] / static_cast<float>(channels);
  }
}

#ifdef CONVZOO_X86
__attribute__((target("avx512f"))) void pack_planes_avx512(const float* x, const float* scale, const float* shift,
                                                           int64_t channels, int64_t positions, int64_t words,
                                                           uint64_t* out, float* mean_abs, int64_t n, int64_t p0,
                                                           int64_t p1) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  for (int64_t start = p0; start < p1; start += 16) {
    const int64_t len = std::min<int64_t>(16, p1 - start);
    const __mmask16 lanes = static_cast<__mmask16>(len == 16 ? 0xffff : (1u << len) - 1u);
    __m512 total = _mm512_setzero_ps();
    for (int64_t word = 0; word < words; ++word) {
      __m512i low = _mm512_setzero_si512(), high = _mm512_setzero_si512();  // positions 0-7 and 8-15
      const int64_t first = word * kWordBits, last = std::min(channels, first + kWordBits);
      for (int64_t c = first; c < last; ++c) {
        const __m512 product =
            _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x + (n * channels + c) * positions + start), _mm512_set1_ps(scale[c]));
        const __m512 v = _mm512_add_ps(product, _mm512_set1_ps(shift[c]));  // lanes past the end are never stored
        const __mmask16 positive = _mm512_mask_cmp_ps_mask(lanes, v, zero, _CMP_GE_OQ);
        const __m512i bit = _mm512_set1_epi64(static_cast<long long>(uint64_t{1} << (c - first)));
        low = _mm512_mask_or_epi64(low, static_cast<__mmask8>(positive), low, bit);
        high = _mm512_mask_or_epi64(high, static_cast<__mmask8>(positive >> 8), high, bit);
        total = _mm512_add_ps(total, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask)));
      }
      uint64_t* dst = out + (n * positions + start) * words + word;
      if (words == 1) {
        _mm512_mask_storeu_epi64(dst, static_cast<__mmask8>(lanes), low);
        _mm512_mask_storeu_epi64(dst + 8, static_cast<__mmask8>(lanes >> 8), high);
      } else {
        alignas(64) uint64_t block[16];
        _mm512_store_si512(block, low);
        _mm512_store_si512(block + 8, high);
        for (int64_t i = 0; i < len; ++i) dst[i * words] = block[i];
      }
    }
    const __m512 mean = _mm512_div_ps(total, _mm512_set1_ps(static_cast<float>(channels)));
    _mm512_mask_storeu_ps(mean_abs + n * positions + start, lanes, mean);
  }
}
#endif

// The per-channel affine applied before binarising: the given (C) tensors, or 1 and 0.
std::pair<torch::Tensor, torch::Tensor> affine(int64_t channels, const c10::optional<torch::Tensor>& scale,
                                               const c10::optional<torch::Tensor>& shift) {
  check(scale.has_value() == shift.has_value(), "scale and shift come together");
  if (!scale.has_value()) return {torch::ones({channels}, torch::kFloat32), torch::zeros({channels}, torch::kFloat32)};
  check(scale->numel() == channels && shift->numel() == channels, "scale and shift need one entry per channel");
  return {scale->to(torch::kFloat32).contiguous(), shift->to(torch::kFloat32).contiguous()};
}

std::vector<torch::Tensor> pack_planes(const torch::Tensor& x, const c10::optional<torch::Tensor>& scale,
                                       const c10::optional<torch::Tensor>& shift) {
  check(x.dim() == 3 && x.scalar_type() == torch::kFloat32 && x.device().is_cpu(),
        "pack_planes expects a float32 CPU tensor (N, channels, positions)");
  auto planes = x.contiguous();
  const int64_t n = planes.size(0), channels = planes.size(1), positions = planes.size(2);
  const int64_t words = (channels + kWordBits - 1) / kWordBits;
  check(channels > 0, "pack_planes needs at least one channel");
  const auto [scale_t, shift_t] = affine(channels, scale, shift);
  const float* scale_p = scale_t.data_ptr<float>();
  const float* shift_p = shift_t.data_ptr<float>();
  auto out = torch::empty({n, positions, words}, torch::kInt64);
  auto mean_abs = torch::empty({n, positions}, torch::kFloat32);
  const float* src = planes.data_ptr<float>();
  auto* dst = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  float* mean = mean_abs.data_ptr<float>();
  auto fn = pack_planes_generic;
#ifdef CONVZOO_X86
  if (dispatch().avx512) fn = pack_planes_avx512;
#endif
  constexpr int64_t kChunk = 256;  // positions per task (a multiple of both kernels' blocks)
  const int64_t chunks = (positions + kChunk - 1) / kChunk;
  at::parallel_for(0, n * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t sample = t / chunks, p0 = (t % chunks) * kChunk;
      fn(src, scale_p, shift_p, channels, positions, words, dst, mean, sample, p0, std::min(positions, p0 + kChunk));
    }
  });
  return {out, mean_abs};
}

// Mean of a (N, D, H, W) over each kd x kh x kw window with zero "same" padding, divided by the full window
// size (padded positions count as zeros), at the given stride: the K map of S8 from A = mean_c |x|.
torch::Tensor window_mean(const torch::Tensor& a, std::vector<int64_t> kernel, std::vector<int64_t> stride) {
  check(a.dim() == 4 && a.scalar_type() == torch::kFloat32 && a.device().is_cpu(),
        "window_mean expects a float32 CPU tensor (N, D, H, W)");
  check(kernel.size() == 3 && stride.size() == 3, "window_mean needs 3 kernel sizes and 3 strides");
  auto src_t = a.contiguous();
  const int64_t n = a.size(0), d = a.size(1), h = a.size(2), w = a.size(3);
  const int64_t od = (d + stride[0] - 1) / stride[0], oh = (h + stride[1] - 1) / stride[1];
  const int64_t ow = (w + stride[2] - 1) / stride[2];
  const float inverse = 1.0f / static_cast<float>(kernel[0] * kernel[1] * kernel[2]);
  auto out = torch::empty({n, od, oh, ow}, torch::kFloat32);
  const float* src = src_t.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, n * od * oh, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t y = r % oh, z = (r / oh) % od, s = r / (oh * od);
      int64_t zlo, zhi, ylo, yhi;
      tap_range(z, stride[0], kernel[0] / 2, d, kernel[0], &zlo, &zhi);
      tap_range(y, stride[1], kernel[1] / 2, h, kernel[1], &ylo, &yhi);
      for (int64_t x = 0; x < ow; ++x) {
        int64_t xlo, xhi;
        tap_range(x, stride[2], kernel[2] / 2, w, kernel[2], &xlo, &xhi);
        float total = 0.0f;
        for (int64_t i = zlo; i < zhi; ++i)
          for (int64_t j = ylo; j < yhi; ++j) {
            const float* row = src + ((s * d + z * stride[0] - kernel[0] / 2 + i) * h + y * stride[1] - kernel[1] / 2 + j) * w;
            for (int64_t k = xlo; k < xhi; ++k) total += row[x * stride[2] - kernel[2] / 2 + k];
          }
        dst[r * ow + x] = total * inverse;
      }
    }
  });
  return out;
}

std::vector<torch::Tensor> pack(const torch::Tensor& x, const c10::optional<torch::Tensor>& scale,
                                const c10::optional<torch::Tensor>& shift) {
  check(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.device().is_cpu(),
        "pack expects a float32 CPU tensor (positions, channels)");
  auto rows = x.contiguous();
  const int64_t m = rows.size(0), channels = rows.size(1), words = (channels + kWordBits - 1) / kWordBits;
  check(channels > 0, "pack needs at least one channel");
  const auto [scale_t, shift_t] = affine(channels, scale, shift);
  const float* scale_p = scale_t.data_ptr<float>();
  const float* shift_p = shift_t.data_ptr<float>();
  auto out = torch::empty({m, words}, torch::kInt64);
  auto mean_abs = torch::empty({m}, torch::kFloat32);
  const float* src = rows.data_ptr<float>();
  auto* dst = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  float* mean = mean_abs.data_ptr<float>();
  auto fn = pack_rows_generic;
#ifdef CONVZOO_X86
  if (dispatch().avx512) fn = pack_rows_avx512;
#endif
  at::parallel_for(0, m, 256, [&](int64_t begin, int64_t end) {
    fn(src, scale_p, shift_p, channels, words, dst, mean, begin, end);
  });
  return {out, mean_abs};
}

std::string isa() { return dispatch().name; }

std::vector<std::string> isas() {
  std::vector<std::string> names;
  for (const auto& d : supported()) names.push_back(d.name);
  return names;
}

void set_isa(const std::string& name) {
  std::string known;
  for (const auto& d : supported()) {
    if (d.name == name) {
      dispatch() = d;
      return;
    }
    known += (known.empty() ? "" : ", ") + d.name;
  }
  TORCH_CHECK(false, "binary native: unknown or unsupported instruction set '", name, "' (this CPU: ", known, ")");
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "convzoo: bit-packed XNOR convolution (XOR + popcount) for CPU inference";
  m.def("conv", &conv, "integer (alpha=None) or scaled binary convolution of packed words",
        pybind11::arg("x_words"), pybind11::arg("w_words"), pybind11::arg("in_channels"), pybind11::arg("stride"),
        pybind11::arg("alpha") = pybind11::none(), pybind11::arg("scale") = pybind11::none(),
        pybind11::arg("bias") = pybind11::none(), pybind11::arg("prepared") = pybind11::none());
  m.def("prepare", &prepare, "weights re-laid out for conv (pass as prepared= to skip doing it per call)");
  m.def("pack", &pack, "signs of (positions, channels) float32 rows (after x * scale + shift) packed to int64 words, "
        "and mean |x * scale + shift| per row", pybind11::arg("x"), pybind11::arg("scale") = pybind11::none(),
        pybind11::arg("shift") = pybind11::none());
  m.def("pack_planes", &pack_planes, "as pack, for (N, channels, positions) float32 planes: words (N, positions, words)",
        pybind11::arg("x"), pybind11::arg("scale") = pybind11::none(), pybind11::arg("shift") = pybind11::none());
  m.def("window_mean", &window_mean, "the K map: windowed mean of (N, D, H, W) with zero same padding");
  m.def("isa", &isa, "the instruction set the kernels run with");
  m.def("isas", &isas, "the instruction sets this CPU supports, fastest first");
  m.def("set_isa", &set_isa, "run the kernels with one of isas() (for testing the portable kernels)");
}
