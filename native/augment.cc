// Batch assembly for the data loader: gathers a batch's uint8 CHW images, applies the
// per-sample augmentation the loader drew in JS (crop offsets into the padded image, flips,
// cutout and erasing boxes), normalizes with (v/255 - mean) / std and writes float32 NCHW.
// The work runs on its own std::thread, so the loader can assemble batch k+1 while the
// training step of batch k runs; take() joins and hands the tensor over.
#include <algorithm>
#include <cstring>
#include <thread>

#include "common.h"

namespace bn {

// Per-sample parameters, in this order (src/data/augment.ts writes the same layout).
enum Param { kOffY, kOffX, kFlip, kCutY0, kCutX0, kCutY1, kCutX1, kEraseY0, kEraseX0, kEraseY1, kEraseX1, kParams };

struct BatchSpec {
  const uint8_t* images = nullptr;
  int64_t n = 0, c = 0, h = 0, w = 0;
  std::vector<int32_t> indices;
  std::vector<int32_t> params;
  int64_t padding = 0;
  bool reflect = false;
  std::vector<float> mean, stdev;
  at::Device device{at::kCPU};
};

// Source coordinate of padded coordinate p (0 <= p < size + 2*padding), or -1 for a zero pad.
// Reflect is PyTorch's "reflect" (the edge pixel is not repeated: -1 -> 1).
static int64_t SourceIndex(int64_t p, int64_t padding, int64_t size, bool reflect) {
  int64_t s = p - padding;
  if (s >= 0 && s < size) return s;
  if (!reflect) return -1;
  return s < 0 ? -s : 2 * (size - 1) - s;
}

static void FillBox(float* image, const BatchSpec& s, const int32_t* p, int y0, int x0, int y1, int x1) {
  if (p[y1] <= p[y0] || p[x1] <= p[x0]) return;
  for (int64_t ch = 0; ch < s.c; ch++)
    for (int64_t y = p[y0]; y < p[y1]; y++) {
      float* row = image + (ch * s.h + y) * s.w;
      std::fill(row + p[x0], row + p[x1], 0.0f);
    }
}

static at::Tensor Assemble(const BatchSpec& s) {
  const int64_t b = (int64_t)s.indices.size();
  const int64_t plane = s.h * s.w;
  bool pin = s.device.is_cuda();
  at::Tensor out = at::empty({b, s.c, s.h, s.w}, at::TensorOptions().dtype(at::kFloat).pinned_memory(pin));
  float* o = out.data_ptr<float>();
  // One lookup table per channel: the normalized value of each byte.
  std::vector<float> lut(s.c * 256);
  for (int64_t ch = 0; ch < s.c; ch++)
    for (int v = 0; v < 256; v++) lut[ch * 256 + v] = ((float)v / 255.0f - s.mean[ch]) / s.stdev[ch];
  std::vector<int64_t> rows(s.h), cols(s.w);
  for (int64_t i = 0; i < b; i++) {
    const int32_t* p = s.params.data() + i * kParams;
    const uint8_t* src = s.images + (int64_t)s.indices[i] * s.c * plane;
    for (int64_t y = 0; y < s.h; y++) rows[y] = SourceIndex(y + p[kOffY], s.padding, s.h, s.reflect);
    for (int64_t x = 0; x < s.w; x++) {
      int64_t fx = p[kFlip] ? s.w - 1 - x : x;
      cols[x] = SourceIndex(fx + p[kOffX], s.padding, s.w, s.reflect);
    }
    float* image = o + i * s.c * plane;
    for (int64_t ch = 0; ch < s.c; ch++) {
      const float* table = lut.data() + ch * 256;
      for (int64_t y = 0; y < s.h; y++) {
        float* row = image + (ch * s.h + y) * s.w;
        if (rows[y] < 0) {
          std::fill(row, row + s.w, table[0]);
          continue;
        }
        const uint8_t* srow = src + (ch * s.h + rows[y]) * s.w;
        for (int64_t x = 0; x < s.w; x++) row[x] = cols[x] < 0 ? table[0] : table[srow[cols[x]]];
      }
    }
    // Cutout (DeVries & Taylor 2017) and random erasing (Zhong et al. 2020) set the box to 0
    // after normalization, i.e. to the data set mean, as their reference code does.
    FillBox(image, s, p, kCutY0, kCutX0, kCutY1, kCutX1);
    FillBox(image, s, p, kEraseY0, kEraseX0, kEraseY1, kEraseX1);
  }
  // From pinned memory without waiting: the copy is queued on the stream behind the kernels
  // already there, and the host caching allocator holds the pinned block until it is done.
  if (!s.device.is_cpu()) out = out.to(s.device, /*non_blocking=*/true);
  return out;
}

// A batch being assembled on a background thread. Holds a reference to the dataset's
// Uint8Array so V8 cannot free the pixels while the thread reads them.
class BatchJob : public Napi::ObjectWrap<BatchJob> {
 public:
  static Napi::FunctionReference constructor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "BatchJob",
                                     {InstanceMethod("take", &BatchJob::Take), InstanceMethod("cancel", &BatchJob::Cancel)});
    constructor = Napi::Persistent(cls);
    constructor.SuppressDestruct();
  }
  explicit BatchJob(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BatchJob>(info) {}
  ~BatchJob() override { Join(); }

  void Start(Napi::Uint8Array images, BatchSpec spec) {
    imagesRef = Napi::Persistent(images);
    spec_ = std::move(spec);
    worker = std::thread([this]() {
      try {
        result = Assemble(spec_);
      } catch (const c10::Error& e) {
        error = e.what_without_backtrace();
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
  }

 private:
  void Join() {
    if (worker.joinable()) worker.join();
  }
  void Release() {
    Join();
    if (!imagesRef.IsEmpty()) imagesRef.Reset();
  }
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Release();
    if (taken) throw Napi::Error::New(info.Env(), "augmentBatch: this batch was already taken or cancelled.");
    taken = true;
    if (!error.empty()) ThrowOpError(info, "augmentBatch", error);
    at::Tensor t = std::move(result);
    return TensorHandle::Wrap(info.Env(), t);
  }
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    Release();
    taken = true;
    result = at::Tensor();
    return info.Env().Undefined();
  }

  Napi::Reference<Napi::Uint8Array> imagesRef;
  BatchSpec spec_;
  std::thread worker;
  at::Tensor result;
  std::string error;
  bool taken = false;
};
Napi::FunctionReference BatchJob::constructor;

static std::vector<int32_t> Int32s(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    ThrowArg(info, "augmentBatch", i, (std::string("an Int32Array (") + name + ")").c_str());
  auto a = info[i].As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

static std::vector<float> Floats(const Args& a, size_t i) {
  if (i >= a.info.Length() || !a.info[i].IsArray()) ThrowArg(a.info, a.op, i, "an array of numbers");
  auto arr = a.info[i].As<Napi::Array>();
  std::vector<float> out;
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) ThrowArg(a.info, a.op, i, "an array of numbers");
    out.push_back((float)e.As<Napi::Number>().DoubleValue());
  }
  return out;
}

static void CheckBox(const int32_t* p, int y0, int x0, int y1, int x1, int64_t h, int64_t w, int64_t i) {
  bool empty = p[y1] <= p[y0] || p[x1] <= p[x0];
  if (empty) return;
  if (p[y0] < 0 || p[x0] < 0 || p[y1] > h || p[x1] > w)
    throw std::invalid_argument("sample " + std::to_string(i) + ": a cutout/erasing box lies outside the " +
                                std::to_string(h) + "x" + std::to_string(w) + " image");
}

// augmentBatch(images: Uint8Array, dims [N,C,H,W], indices: Int32Array, params: Int32Array
// (kParams per sample), padding, reflect, mean[C], std[C], device?) -> BatchJob
static Napi::Value AugmentBatch(const Napi::CallbackInfo& info) {
  Args a{info, "augmentBatch"};
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowArg(info, "augmentBatch", 0, "a Uint8Array (the data set's images)");
  auto images = info[0].As<Napi::Uint8Array>();
  BatchSpec s;
  std::vector<int64_t> dims = a.ints(1);
  s.indices = Int32s(info, 2, "indices");
  s.params = Int32s(info, 3, "params");
  s.padding = a.int64(4);
  s.reflect = a.boolean(5);
  s.mean = Floats(a, 6);
  s.stdev = Floats(a, 7);
  return Guard("augmentBatch", info, [&]() -> Napi::Value {
    s.device = a.device(8);
    if (dims.size() != 4) throw std::invalid_argument("dims must be [N, C, H, W]");
    s.n = dims[0], s.c = dims[1], s.h = dims[2], s.w = dims[3];
    if (s.n < 0 || s.c < 1 || s.h < 1 || s.w < 1) throw std::invalid_argument("dims must be positive");
    if ((int64_t)images.ElementLength() != s.n * s.c * s.h * s.w)
      throw std::invalid_argument("images holds " + std::to_string(images.ElementLength()) +
                                  " bytes but dims [N,C,H,W] need " + std::to_string(s.n * s.c * s.h * s.w));
    if (s.params.size() != s.indices.size() * kParams)
      throw std::invalid_argument("params must hold " + std::to_string(kParams) + " numbers per sample");
    if ((int64_t)s.mean.size() != s.c || (int64_t)s.stdev.size() != s.c)
      throw std::invalid_argument("mean and std need one value per channel (" + std::to_string(s.c) + ")");
    for (float v : s.stdev)
      if (!(v > 0)) throw std::invalid_argument("std values must be > 0");
    if (s.padding < 0) throw std::invalid_argument("padding must be >= 0");
    if (s.reflect && (s.padding >= s.h || s.padding >= s.w))
      throw std::invalid_argument("reflect padding must be smaller than the image's height and width");
    for (size_t i = 0; i < s.indices.size(); i++) {
      if (s.indices[i] < 0 || s.indices[i] >= s.n)
        throw std::invalid_argument("index " + std::to_string(s.indices[i]) + " is outside [0, " +
                                    std::to_string(s.n) + ")");
      const int32_t* p = s.params.data() + i * kParams;
      if (p[kOffY] < 0 || p[kOffY] > 2 * s.padding || p[kOffX] < 0 || p[kOffX] > 2 * s.padding)
        throw std::invalid_argument("sample " + std::to_string(i) + ": crop offsets must lie in [0, 2*padding]");
      CheckBox(p, kCutY0, kCutX0, kCutY1, kCutX1, s.h, s.w, (int64_t)i);
      CheckBox(p, kEraseY0, kEraseX0, kEraseY1, kEraseX1, s.h, s.w, (int64_t)i);
    }
    s.images = static_cast<const uint8_t*>(images.ArrayBuffer().Data()) + images.ByteOffset();
    Napi::Object job = BatchJob::constructor.New({});
    BatchJob::Unwrap(job)->Start(images, std::move(s));
    return job;
  });
}

void InitAugment(Napi::Env env, Napi::Object exports) {
  BatchJob::Init(env, exports);
  Export(env, exports, "augmentBatch", AugmentBatch);
}

}  // namespace bn
