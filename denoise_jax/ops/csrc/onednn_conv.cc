// XLA FFI custom calls into oneDNN's 2-D convolution: forward, backward-data and
// backward-weights, float32, NHWC activations and HWIO (flax) kernels.
//
// Every handler takes the same int64 attribute `params`:
//   [stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dil_h, dil_w, groups,
//    layout]
// where dilations are XLA's (1 = none) and `layout` picks the activation memory format
// oneDNN runs in: 0 = plain NHWC (no reorders), 1 = oneDNN's choice (blocked formats,
// with reorders from/to NHWC included in the call).
//
//   DjConvFwd:         x [N,H,W,Ci], w [kh,kw,Ci/G,Co]  -> y [N,Ho,Wo,Co]
//   DjConvBwdData:     dy [N,Ho,Wo,Co], w                -> dx [N,H,W,Ci]
//   DjConvBwdWeights:  x, dy                             -> dw [kh,kw,Ci/G,Co]
//
// Primitives are created once per problem and cached; reorder and scratchpad buffers are
// per thread (XLA may run several custom calls at once: independent ops, or one per device).

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using dnnl::memory;
using Dims = memory::dims;

enum Op : int { kFwd = 0, kBwdData = 1, kBwdWeights = 2 };

struct Problem {
    int64_t n, h, w, ci, ho, wo, co, kh, kw;
    int64_t sh, sw, pt, pb, pl, pr, dh, dw, groups, layout;
    int64_t threads;  // oneDNN splits the work for this many threads when it creates a plan

    std::vector<int64_t> Key(int op) const {
        return {op, n, h, w, ci, ho, wo, co, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                groups, layout, threads};
    }
};

dnnl::engine& Engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// NHWC as a oneDNN descriptor: logical dims are always (N, C, H, W).
memory::desc Nhwc(int64_t n, int64_t h, int64_t w, int64_t c) {
    return memory::desc({n, c, h, w}, memory::data_type::f32, Dims{h * w * c, 1, w * c, c});
}

// flax's [kh, kw, Ci/G, Co] kernel; output channel g * (Co/G) + o belongs to group g.
memory::desc Hwio(const Problem& p) {
    const int64_t cig = p.ci / p.groups, cog = p.co / p.groups;
    if (p.groups == 1) {
        return memory::desc({p.co, cig, p.kh, p.kw}, memory::data_type::f32,
                            Dims{1, p.co, p.kw * cig * p.co, cig * p.co});
    }
    return memory::desc({p.groups, cog, cig, p.kh, p.kw}, memory::data_type::f32,
                        Dims{cog, 1, p.co, p.kw * cig * p.co, cig * p.co});
}

memory::desc Any(const memory::desc& md) {
    return memory::desc(md.get_dims(), memory::data_type::f32, memory::format_tag::any);
}

// One oneDNN argument of a primitive: the caller's format and the primitive's.
struct Arg {
    int dnnl_arg;
    memory::desc user;
    memory::desc internal;
    bool output;
    bool reorder() const { return user != internal; }
};

struct Plan {
    dnnl::primitive prim;
    memory::desc scratchpad;
    std::vector<Arg> args;  // in call order: the two inputs, then the output
    std::vector<dnnl::primitive> reorders;  // per arg, empty where no reorder is needed
    std::vector<memory::desc> reorder_scratchpads;
};

std::unique_ptr<Plan> MakePlan(int op, const Problem& p) {
    auto& eng = Engine();
    const memory::desc x = Nhwc(p.n, p.h, p.w, p.ci), y = Nhwc(p.n, p.ho, p.wo, p.co);
    const memory::desc w = Hwio(p);
    // Weights are small: always let oneDNN pick their format. Activations follow `layout`.
    const bool any_act = p.layout != 0;
    const memory::desc xa = any_act ? Any(x) : x, ya = any_act ? Any(y) : y, wa = Any(w);
    const Dims strides{p.sh, p.sw}, dil{p.dh - 1, p.dw - 1};
    const Dims pad_l{p.pt, p.pl}, pad_r{p.pb, p.pr};
    const auto alg = dnnl::algorithm::convolution_direct;
    // Our own scratchpad per call: oneDNN's shared one is unsafe when XLA runs two custom
    // calls at once (it does: a layer's two gradients are independent).
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

    auto fwd = dnnl::convolution_forward::primitive_desc(
        eng, dnnl::prop_kind::forward_training, alg, xa, wa, ya, strides, dil, pad_l, pad_r,
        attr);
    auto plan = std::make_unique<Plan>();
    if (op == kFwd) {
        plan->prim = dnnl::convolution_forward(fwd);
        plan->scratchpad = fwd.scratchpad_desc();
        plan->args = {{DNNL_ARG_SRC, x, fwd.src_desc(), false},
                      {DNNL_ARG_WEIGHTS, w, fwd.weights_desc(), false},
                      {DNNL_ARG_DST, y, fwd.dst_desc(), true}};
    } else if (op == kBwdData) {
        auto pd = dnnl::convolution_backward_data::primitive_desc(
            eng, alg, xa, wa, ya, strides, dil, pad_l, pad_r, fwd, attr);
        plan->prim = dnnl::convolution_backward_data(pd);
        plan->scratchpad = pd.scratchpad_desc();
        plan->args = {{DNNL_ARG_DIFF_DST, y, pd.diff_dst_desc(), false},
                      {DNNL_ARG_WEIGHTS, w, pd.weights_desc(), false},
                      {DNNL_ARG_DIFF_SRC, x, pd.diff_src_desc(), true}};
    } else {
        auto pd = dnnl::convolution_backward_weights::primitive_desc(
            eng, alg, xa, wa, ya, strides, dil, pad_l, pad_r, fwd, attr);
        plan->prim = dnnl::convolution_backward_weights(pd);
        plan->scratchpad = pd.scratchpad_desc();
        plan->args = {{DNNL_ARG_SRC, x, pd.src_desc(), false},
                      {DNNL_ARG_DIFF_DST, y, pd.diff_dst_desc(), false},
                      {DNNL_ARG_DIFF_WEIGHTS, w, pd.diff_weights_desc(), true}};
    }
    for (const Arg& a : plan->args) {
        if (!a.reorder()) {
            plan->reorders.emplace_back();
            plan->reorder_scratchpads.emplace_back();
            continue;
        }
        auto pd = a.output ? dnnl::reorder::primitive_desc(eng, a.internal, eng, a.user, attr)
                           : dnnl::reorder::primitive_desc(eng, a.user, eng, a.internal, attr);
        plan->reorders.push_back(dnnl::reorder(pd));
        plan->reorder_scratchpads.push_back(pd.scratchpad_desc());
    }
    return plan;
}

std::shared_ptr<const Plan> GetPlan(int op, const Problem& p) {
    static std::mutex mu;
    static std::map<std::vector<int64_t>, std::shared_ptr<const Plan>> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto key = p.Key(op);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    // Bounded: inference on many image sizes would otherwise keep every JIT kernel alive.
    if (cache.size() >= 512) cache.clear();
    std::shared_ptr<const Plan> plan = MakePlan(op, p);
    cache.emplace(std::move(key), plan);
    return plan;
}

// Per-thread scratch buffers for the primitive-format copies, grown on demand.
struct Scratch {
    struct Free {
        void operator()(void* ptr) const { std::free(ptr); }
    };
    std::unique_ptr<void, Free> buf[4];
    size_t size[4] = {0, 0, 0, 0};

    void* Get(int i, size_t bytes) {
        if (size[i] < bytes) {
            buf[i].reset(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
            size[i] = buf[i] ? bytes : 0;
        }
        return buf[i].get();
    }
};

void* Buffer(Scratch& scratch, int slot, size_t bytes) {
    void* buf = scratch.Get(slot, bytes);
    if (buf == nullptr) throw dnnl::error(dnnl_out_of_memory, "scratch allocation failed");
    return buf;
}

void Run(int op, Problem p, void* in0, void* in1, void* out, int64_t threads) {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
    // OpenMP's thread count is per calling thread: match XLA's intra-op pool every call.
    if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
    p.threads = omp_get_max_threads();
#else
    p.threads = threads;
#endif
    const std::shared_ptr<const Plan> owner = GetPlan(op, p);
    const Plan& plan = *owner;
    auto& eng = Engine();
    thread_local dnnl::stream stream(eng);
    thread_local Scratch scratch;

    // Runs `prim` with `args` plus its scratchpad (slot 3: the steps of one call run in turn).
    auto execute = [&](const dnnl::primitive& prim, const memory::desc& scratchpad,
                       std::unordered_map<int, memory> args) {
        if (size_t bytes = scratchpad.get_size(); bytes > 0) {
            args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratchpad, eng, Buffer(scratch, 3, bytes)));
        }
        prim.execute(stream, args);
    };

    void* ptrs[3] = {in0, in1, out};
    std::unordered_map<int, memory> exec_args;
    std::vector<int> outputs;
    std::vector<memory> users(3), internals(3);
    for (int i = 0; i < 3; ++i) {
        const Arg& a = plan.args[i];
        users[i] = memory(a.user, eng, ptrs[i]);
        if (!a.reorder()) {
            exec_args.emplace(a.dnnl_arg, users[i]);
            continue;
        }
        internals[i] = memory(a.internal, eng, Buffer(scratch, i, a.internal.get_size()));
        exec_args.emplace(a.dnnl_arg, internals[i]);
        if (a.output) {
            outputs.push_back(i);
        } else {
            execute(plan.reorders[i], plan.reorder_scratchpads[i],
                    {{DNNL_ARG_FROM, users[i]}, {DNNL_ARG_TO, internals[i]}});
        }
    }
    execute(plan.prim, plan.scratchpad, exec_args);
    for (int i : outputs) {
        execute(plan.reorders[i], plan.reorder_scratchpads[i],
                {{DNNL_ARG_FROM, internals[i]}, {DNNL_ARG_TO, users[i]}});
    }
    stream.wait();
}

ffi::Error Check(const ffi::Span<const int64_t>& params) {
    if (params.size() != 10) {
        return ffi::Error(ffi::ErrorCode::kInvalidArgument, "dj_conv: params needs 10 values");
    }
    return ffi::Error::Success();
}

Problem MakeProblem(ffi::Span<const int64_t> params, ffi::AnyBuffer::Dimensions x, ffi::AnyBuffer::Dimensions y,
                    ffi::AnyBuffer::Dimensions w) {
    Problem p{};
    p.n = x[0], p.h = x[1], p.w = x[2], p.ci = x[3];
    p.ho = y[1], p.wo = y[2], p.co = y[3];
    p.kh = w[0], p.kw = w[1];
    p.sh = params[0], p.sw = params[1];
    p.pt = params[2], p.pb = params[3], p.pl = params[4], p.pr = params[5];
    p.dh = params[6], p.dw = params[7], p.groups = params[8], p.layout = params[9];
    return p;
}

template <typename F>
ffi::Error Guard(F&& f) {
    try {
        f();
    } catch (const dnnl::error& e) {
        return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
    } catch (const std::exception& e) {
        return ffi::Error(ffi::ErrorCode::kInternal, std::string("dj_conv: ") + e.what());
    }
    return ffi::Error::Success();
}

ffi::Error ConvFwd(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, ffi::Span<const int64_t> params) {
    if (auto err = Check(params); err.failure()) return err;
    const Problem p = MakeProblem(params, x.dimensions(), y->dimensions(), w.dimensions());
    return Guard([&] {
        Run(kFwd, p, x.untyped_data(), w.untyped_data(), y->untyped_data(), pool.num_threads());
    });
}

ffi::Error ConvBwdData(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> w,
                       ffi::ResultBuffer<ffi::F32> dx, ffi::Span<const int64_t> params) {
    if (auto err = Check(params); err.failure()) return err;
    const Problem p = MakeProblem(params, dx->dimensions(), dy.dimensions(), w.dimensions());
    return Guard([&] {
        Run(kBwdData, p, dy.untyped_data(), w.untyped_data(), dx->untyped_data(),
            pool.num_threads());
    });
}

ffi::Error ConvBwdWeights(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                          ffi::ResultBuffer<ffi::F32> dw, ffi::Span<const int64_t> params) {
    if (auto err = Check(params); err.failure()) return err;
    const Problem p = MakeProblem(params, x.dimensions(), dy.dimensions(), dw->dimensions());
    return Guard([&] {
        Run(kBwdWeights, p, x.untyped_data(), dy.untyped_data(), dw->untyped_data(),
            pool.num_threads());
    });
}

// All three calls take (x or dy, w or x or dy) and return one f32 buffer.
auto Binding() {
    return ffi::Ffi::Bind()
        .Ctx<ffi::ThreadPool>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Ret<ffi::Buffer<ffi::F32>>()
        .Attr<ffi::Span<const int64_t>>("params");
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DjConvFwd, ConvFwd, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(DjConvBwdData, ConvBwdData, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(DjConvBwdWeights, ConvBwdWeights, Binding());

// A cheap call the Python side makes once after loading: creating the engine here surfaces
// a runtime that cannot start (e.g. no CPU device) as a load failure, not a failed step.
extern "C" int DjOnednnProbe(char* message, int size) {
    try {
        Engine();
        return 0;
    } catch (const std::exception& e) {
        std::snprintf(message, static_cast<size_t>(size), "%s", e.what());
        return 1;
    }
}
