// LLVM ORC lazy reexports, measured the way the lazyrt manager bench measures
// lazyrt (tests/benches/manager/): the alternative a user would pick instead,
// timed in the same run on the same machine so that lazyrt's figures can be
// stated as ratios.
//
// Built by tests/benches/orc.rs (the `manager` bench) against each installed
// LLVM (llvm-config-19, llvm-config-22); one binary per version. Usage:
//
//   orc_bench version
//   orc_bench first_call <lctm|lrm> <absolute|units> <n>
//   orc_bench define_lookup <lctm|lrm> <n> [warm]   (warm: heap pre-touched)
//
// APIs:
// - lctm: LazyCallThroughManager (createLocalLazyCallThroughManager) with a
//   local IndirectStubsManager, `lazyReexports(LCTM, ISM, JD, aliases)`: the
//   API of LLVM <= 19 (still present in 22).
// - lrm: LazyReexportsManager (LLVM 20+) built by
//   createJITLinkLazyReexportsManager over an in-process ObjectLinkingLayer
//   and JITLinkRedirectableSymbolManager. Its trampolines call
//   `__orc_rt_reenter`, which normally comes from the ORC runtime
//   (compiler-rt's liborc_rt, not installed with llvm-22-dev). This program
//   defines its own: save the registers, call `__orc_rt_resolve`, which sends
//   the trampoline address to the session's `__orc_rt_resolve_tag` handler
//   exactly as SelfExecutorProcessControl's in-process JIT dispatch does
//   (SPS-serialized argument, runJITDispatchHandler, promise/future), restore
//   the registers and jump to the answer.
//
// Output: `key=value` lines for the Rust bench (see parse_fields there):
//   orc_first_call p50_ns=.. p99_ns=.. mean_ns=.. n=..
//   orc_first_call_samples <ns> <ns> ...
//   orc_define_lookup n=.. define_ns=.. lookup_ns=.. heap_bytes=.. page_faults=..
//
// Timing: `lfence; rdtsc; lfence` around each call (timer included, as in
// lazyrt's bench), ticks calibrated against CLOCK_MONOTONIC over 50 ms. Heap:
// glibc mallinfo2 (uordblks + hblkhd) before building the alias map and after
// the lookup's result is dropped (names interned before), single-threaded
// (InPlaceTaskDispatcher), so everything is in the main arena.

#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/Orc/Core.h"
#include "llvm/ExecutionEngine/Orc/IndirectionUtils.h"
#include "llvm/ExecutionEngine/Orc/LazyReexports.h"
#include "llvm/ExecutionEngine/Orc/TaskDispatch.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#if __has_include("llvm/ExecutionEngine/Orc/SelfExecutorProcessControl.h")
#include "llvm/ExecutionEngine/Orc/SelfExecutorProcessControl.h"
#else
#include "llvm/ExecutionEngine/Orc/ExecutorProcessControl.h"
#endif
#if __has_include("llvm/ExecutionEngine/Orc/AbsoluteSymbols.h")
#include "llvm/ExecutionEngine/Orc/AbsoluteSymbols.h"
#endif
#if __has_include("llvm/ExecutionEngine/Orc/JITLinkReentryTrampolines.h")
#define HAVE_LRM 1
#include "llvm/ExecutionEngine/Orc/JITLinkRedirectableSymbolManager.h"
#include "llvm/ExecutionEngine/Orc/JITLinkReentryTrampolines.h"
#include "llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/Orc/Shared/WrapperFunctionUtils.h"
#include <future>
#else
#define HAVE_LRM 0
#endif

#include <malloc.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace llvm;
using namespace llvm::orc;

extern "C" __attribute__((noinline)) uint64_t add_one(uint64_t x) {
  return x + 1;
}

static ExitOnError ExitOnErr;

static inline uint64_t ticks() {
  _mm_lfence();
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

static uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Ticks per ns, against CLOCK_MONOTONIC over 50 ms of spinning.
static double calibrate() {
  uint64_t n0 = mono_ns(), t0 = ticks();
  while (mono_ns() - n0 < 50000000u) {
  }
  uint64_t n1 = mono_ns(), t1 = ticks();
  return double(t1 - t0) / double(n1 - n0);
}

static size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static const JITSymbolFlags CallableFlags =
    JITSymbolFlags::Exported | JITSymbolFlags::Callable;

static ExecutorSymbolDef add_one_def() {
  return {ExecutorAddr::fromPtr(&add_one), CallableFlags};
}

// One implementation as its own unit: resolves to add_one when
// materialized, in ORC's two steps (notifyResolved, notifyEmitted).
class AddOneUnit : public MaterializationUnit {
public:
  explicit AddOneUnit(SymbolStringPtr Name)
      : MaterializationUnit(
            Interface(SymbolFlagsMap{{Name, CallableFlags}}, nullptr)),
        Name(std::move(Name)) {}
  StringRef getName() const override { return "AddOneUnit"; }
  void materialize(std::unique_ptr<MaterializationResponsibility> R) override {
    SymbolMap Result;
    Result[Name] = add_one_def();
    ExitOnErr(R->notifyResolved(Result));
    ExitOnErr(R->notifyEmitted({}));
  }

private:
  void discard(const JITDylib &, const SymbolStringPtr &) override {}
  SymbolStringPtr Name;
};

extern "C" void orc_bench_error_handler() {
  fprintf(stderr, "orc_bench: lazy call-through failed\n");
  abort();
}

#if HAVE_LRM
static ExecutionSession *TheSession;
static char ResolveTag;

// What the ORC runtime's __orc_rt_resolve does, in process: call the
// session's resolve handler through the JIT dispatch protocol.
extern "C" void *orc_bench_resolve(void *Trampoline) {
  using namespace shared;
  using SPSSig = SPSExpected<SPSExecutorSymbolDef>(SPSExecutorAddr);
  Expected<ExecutorSymbolDef> Result((ExecutorSymbolDef()));
  auto Caller = [](const char *Data, size_t Size) {
    std::promise<WrapperFunctionBuffer> P;
    auto F = P.get_future();
    TheSession->runJITDispatchHandler(
        [P = std::move(P)](WrapperFunctionBuffer R) mutable {
          P.set_value(std::move(R));
        },
        ExecutorAddr::fromPtr(&ResolveTag),
        WrapperFunctionBuffer::copyFrom(Data, Size));
    return F.get();
  };
  ExitOnErr(WrapperFunction<SPSSig>::call(Caller, Result,
                                          ExecutorAddr::fromPtr(Trampoline)));
  return ExitOnErr(std::move(Result)).getAddress().toPtr<void *>();
}

// __orc_rt_reenter for x86-64 SysV: the trampoline is `call reenter`, so
// [rsp] is the return address into the trampoline (its address + 5) and
// [rsp + 8] the stub caller's return address. Save every GPR and the x87/SSE
// state, resolve, replace [rsp] by the implementation and return into it.
asm(R"(
    .text
    .globl orc_bench_reenter
    .type orc_bench_reenter, @function
orc_bench_reenter:
    pushq %rbp
    movq %rsp, %rbp
    subq $632, %rsp
    movq %rax, -8(%rbp)
    movq %rbx, -16(%rbp)
    movq %rcx, -24(%rbp)
    movq %rdx, -32(%rbp)
    movq %rsi, -40(%rbp)
    movq %rdi, -48(%rbp)
    movq %r8, -56(%rbp)
    movq %r9, -64(%rbp)
    movq %r10, -72(%rbp)
    movq %r11, -80(%rbp)
    movq %r12, -88(%rbp)
    movq %r13, -96(%rbp)
    movq %r14, -104(%rbp)
    movq %r15, -112(%rbp)
    fxsave64 (%rsp)
    movq 8(%rbp), %rdi
    subq $5, %rdi
    call orc_bench_resolve
    movq %rax, 8(%rbp)
    fxrstor64 (%rsp)
    movq -112(%rbp), %r15
    movq -104(%rbp), %r14
    movq -96(%rbp), %r13
    movq -88(%rbp), %r12
    movq -80(%rbp), %r11
    movq -72(%rbp), %r10
    movq -64(%rbp), %r9
    movq -56(%rbp), %r8
    movq -48(%rbp), %rdi
    movq -40(%rbp), %rsi
    movq -32(%rbp), %rdx
    movq -24(%rbp), %rcx
    movq -16(%rbp), %rbx
    movq -8(%rbp), %rax
    addq $632, %rsp
    popq %rbp
    ret
    .size orc_bench_reenter, .-orc_bench_reenter
)");
extern "C" void orc_bench_reenter();
#endif

// A session with one JITDylib and the lazy-reexports machinery of `api`.
struct Setup {
  std::unique_ptr<ExecutionSession> ES;
  JITDylib *JD = nullptr;
  // lctm
  std::unique_ptr<LazyCallThroughManager> LCTM;
  std::unique_ptr<IndirectStubsManager> ISM;
#if HAVE_LRM
  std::unique_ptr<ObjectLinkingLayer> OLL;
  std::unique_ptr<RedirectableSymbolManager> RSM;
  std::unique_ptr<LazyReexportsManager> LRM;
#endif
  bool lrm = false;

  explicit Setup(const std::string &api) {
    auto EPC = ExitOnErr(SelfExecutorProcessControl::Create(
        nullptr, std::make_unique<InPlaceTaskDispatcher>()));
    ES = std::make_unique<ExecutionSession>(std::move(EPC));
    JD = &ES->createBareJITDylib("main");
    const Triple &TT = ES->getExecutorProcessControl().getTargetTriple();
    if (api == "lctm") {
      LCTM = ExitOnErr(createLocalLazyCallThroughManager(
          TT, *ES, ExecutorAddr::fromPtr(&orc_bench_error_handler)));
      ISM = createLocalIndirectStubsManagerBuilder(TT)();
    } else if (api == "lrm") {
#if HAVE_LRM
      lrm = true;
      TheSession = ES.get();
      OLL = std::make_unique<ObjectLinkingLayer>(*ES);
      auto &PlatformJD = ES->createBareJITDylib("platform");
      ExitOnErr(PlatformJD.define(absoluteSymbols(
          {{ES->intern("__orc_rt_reenter"),
            {ExecutorAddr::fromPtr(&orc_bench_reenter), CallableFlags}},
           {ES->intern("__orc_rt_resolve_tag"),
            {ExecutorAddr::fromPtr(&ResolveTag), JITSymbolFlags::Exported}}})));
      RSM = ExitOnErr(JITLinkRedirectableSymbolManager::Create(*OLL));
      LRM = ExitOnErr(createJITLinkLazyReexportsManager(*OLL, *RSM, PlatformJD));
      JD->addToLinkOrder(PlatformJD);
#else
      fprintf(stderr, "orc_bench: LazyReexportsManager needs LLVM 20+\n");
      exit(2);
#endif
    } else {
      fprintf(stderr, "orc_bench: api %s: lctm or lrm\n", api.c_str());
      exit(2);
    }
  }

  ~Setup() { ExitOnErr(ES->endSession()); }

  std::vector<SymbolStringPtr> intern_all(const char *prefix, size_t n) {
    std::vector<SymbolStringPtr> v;
    v.reserve(n);
    for (size_t i = 0; i < n; ++i)
      v.push_back(ES->intern(std::string(prefix) + std::to_string(i)));
    return v;
  }

  void define_reexports(SymbolAliasMap Aliases) {
#if HAVE_LRM
    if (lrm) {
      ExitOnErr(JD->define(lazyReexports(*LRM, std::move(Aliases))));
      return;
    }
#endif
    ExitOnErr(JD->define(lazyReexports(*LCTM, *ISM, *JD, std::move(Aliases))));
  }

  SymbolMap lookup(const std::vector<SymbolStringPtr> &Names) {
    return ExitOnErr(
        ES->lookup(makeJITDylibSearchOrder(JD), SymbolLookupSet(Names)));
  }
};

static SymbolAliasMap aliases(const std::vector<SymbolStringPtr> &Entries,
                              const std::vector<SymbolStringPtr> &Impls) {
  SymbolAliasMap A;
  A.reserve(Entries.size());
  for (size_t i = 0; i < Entries.size(); ++i)
    A[Entries[i]] = SymbolAliasMapEntry(Impls[i], CallableFlags);
  return A;
}

static double pct(const std::vector<double> &sorted, double p) {
  size_t rank = size_t(std::ceil(p / 100.0 * double(sorted.size())));
  rank = std::min(std::max(rank, size_t(1)), sorted.size());
  return sorted[rank - 1];
}

static void first_call(const std::string &api, const std::string &impls,
                       size_t n) {
  double tpn = calibrate();
  Setup S(api);
  auto Impls = S.intern_all("impl_", n);
  auto Entries = S.intern_all("entry_", n);
  if (impls == "absolute") {
    SymbolMap M;
    for (auto &I : Impls)
      M[I] = add_one_def();
    ExitOnErr(S.JD->define(absoluteSymbols(std::move(M))));
  } else if (impls == "units") {
    for (auto &I : Impls)
      ExitOnErr(S.JD->define(std::make_unique<AddOneUnit>(I)));
  } else {
    fprintf(stderr, "orc_bench: impls %s: absolute or units\n", impls.c_str());
    exit(2);
  }
  S.define_reexports(aliases(Entries, Impls));
  auto Found = S.lookup(Entries);
  using Fn1 = uint64_t (*)(uint64_t);
  std::vector<Fn1> Fns;
  Fns.reserve(n);
  for (auto &E : Entries)
    Fns.push_back(Found[E].getAddress().toPtr<Fn1>());
  std::vector<double> Samples(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t t0 = ticks();
    uint64_t r = Fns[i](i);
    uint64_t t1 = ticks();
    if (r != i + 1) {
      fprintf(stderr, "orc_bench: entry %zu returned %" PRIu64 "\n", i, r);
      abort();
    }
    Samples[i] = double(t1 - t0) / tpn;
  }
  // Second calls go straight to add_one: check they do.
  for (size_t i = 0; i < n; ++i)
    if (Fns[i](i) != i + 1)
      abort();
  std::vector<double> Sorted = Samples;
  std::sort(Sorted.begin(), Sorted.end());
  double sum = 0;
  for (double s : Samples)
    sum += s;
  printf("orc_first_call p50_ns=%.3f p99_ns=%.3f mean_ns=%.3f n=%zu\n",
         pct(Sorted, 50), pct(Sorted, 99), sum / double(n), n);
  printf("orc_first_call_samples");
  for (double s : Samples)
    printf(" %.1f", s);
  printf("\n");
}

// Minor page faults of this process so far (first touches of fresh memory).
static long minor_page_faults() {
  struct rusage usage;
  return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_minflt : 0;
}

// lazyrt_tests::bench::pretouch_heap, the same way: later allocations under
// 32 MiB reuse heap pages that already had their first touch.
static void pretouch_heap(size_t bytes) {
  const size_t Block = size_t(16) << 20;
  if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 ||
      mallopt(M_TRIM_THRESHOLD, INT32_MAX) != 1) {
    fprintf(stderr, "orc_bench: mallopt refused, cannot pre-touch the heap\n");
    exit(1);
  }
  std::vector<void *> Blocks;
  for (size_t i = 0; i < (bytes + Block - 1) / Block; ++i) {
    void *B = malloc(Block);
    if (!B) {
      fprintf(stderr, "orc_bench: cannot allocate the heap to pre-touch\n");
      exit(1);
    }
    memset(B, 1, Block);
    Blocks.push_back(B);
  }
  for (void *B : Blocks)
    free(B);
}

static void define_lookup(const std::string &api, size_t n, bool warm_heap) {
  double tpn = calibrate();
  Setup S(api);
  auto Entries = S.intern_all("reexport_", n);
  auto Impls = S.intern_all("impl_", n);
  if (warm_heap)
    pretouch_heap(size_t(256) << 20);
  size_t heap0 = heap_in_use();
  SymbolAliasMap A = aliases(Entries, Impls);
  long faults0 = minor_page_faults();
  uint64_t t0 = ticks();
  S.define_reexports(std::move(A));
  uint64_t t1 = ticks();
  uint64_t t2;
  long faults;
  {
    auto Found = S.lookup(Entries);
    // Timed up to the result, not its destruction: as lazyrt's child,
    // which drops its result map after taking the time.
    t2 = ticks();
    faults = minor_page_faults() - faults0;
    if (Found.size() != n)
      abort();
  }
  // After the result is gone: what the reexports themselves keep.
  size_t heap1 = heap_in_use();
  printf("orc_define_lookup n=%zu define_ns=%.0f lookup_ns=%.0f "
         "heap_bytes=%.0f page_faults=%ld\n",
         n, double(t1 - t0) / tpn, double(t2 - t1) / tpn,
         double(heap1) - double(heap0), faults);
  fflush(stdout);
  // Skip tearing down 100,000 reexports: nothing more is measured.
  _exit(0);
}

int main(int argc, char **argv) {
  ExitOnErr.setBanner("orc_bench: ");
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "version") {
    printf("orc_version major=%d minor=%d patch=%d lrm=%d\n",
           LLVM_VERSION_MAJOR, LLVM_VERSION_MINOR, LLVM_VERSION_PATCH,
           HAVE_LRM);
  } else if (mode == "first_call" && argc == 5) {
    first_call(argv[2], argv[3], size_t(std::strtoull(argv[4], nullptr, 10)));
  } else if (mode == "define_lookup" &&
             (argc == 4 || (argc == 5 && std::string(argv[4]) == "warm"))) {
    define_lookup(argv[2], size_t(std::strtoull(argv[3], nullptr, 10)),
                  argc == 5);
  } else {
    fprintf(stderr,
            "usage: orc_bench version | first_call <lctm|lrm> "
            "<absolute|units> <n> | define_lookup <lctm|lrm> <n> [warm]\n");
    return 2;
  }
  return 0;
}
