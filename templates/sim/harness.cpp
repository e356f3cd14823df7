// Verilator harness for p2vit_top: the off-chip memory model and the run loop.
//
//   Vsim +image=<file> +out=<file> [+latency=N] [+stall=P] [+seed=S] [+max-cycles=N]
//        [+insn-log=<file>] [+trace=<file.fst> +trace-from=C +trace-to=C]
//
// The image file is the whole memory, BUS/8 bytes per word, little-endian within a word. The model
// accepts a request unless a seeded random stall (P percent of cycles) holds mem_ready low, and
// answers reads in order `latency` cycles after acceptance. At HALT the memory is written to +out
// and one JSON line with the cycle count is printed. Exit codes: 0 halted, 2 trap (unknown opcode),
// 3 cycle limit reached, 4 bad memory access, 1 bad arguments.
//
// +insn-log writes, for every instruction, the cycle in which the controller moved past it (its
// `insn_index` output changed), one decimal number per line: what per-layer cycle counts are made of.
// A build with tracing (VM_TRACE) writes an FST waveform of the cycles trace-from … trace-to.
#include "Vp2vit_top.h"
#include "verilated.h"
#include "memory_words.h"
#if VM_TRACE
#include "verilated_fst_c.h"
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

// IData, QData or VlWide<N>: the bus width in bytes either way
constexpr int kBusBytes = int(sizeof(Vp2vit_top::mem_rdata));

struct Pending {
  uint64_t due;
  uint32_t addr;
};

}  // namespace

int main(int argc, char** argv) {
  auto* ctx = new VerilatedContext;
  ctx->commandArgs(argc, argv);
  const std::string imagePath = argValue("image", nullptr);
  const std::string outPath = argValue("out", nullptr);
  const uint64_t latency = std::strtoull(argValue("latency", "2").c_str(), nullptr, 10);
  const unsigned stall = unsigned(std::strtoul(argValue("stall", "0").c_str(), nullptr, 10));
  uint64_t rng = std::strtoull(argValue("seed", "1").c_str(), nullptr, 10) * 2654435761ull + 1;
  const uint64_t maxCycles = std::strtoull(argValue("max-cycles", "100000000").c_str(), nullptr, 10);
  if (imagePath.empty() || outPath.empty() || latency < 1 || stall > 90) {
    std::fprintf(stderr, "usage: Vsim +image=<file> +out=<file> [+latency=N>=1] [+stall=0..90] [+seed=S] [+max-cycles=N]\n");
    return 1;
  }

  std::vector<uint8_t> mem;
  if (!readImage(imagePath, mem)) return 1;
  const uint64_t words = mem.size() / kBusBytes;

  const std::string insnLogPath = argValue("insn-log", "");
  FILE* insnLog = nullptr;
  if (!insnLogPath.empty() && !(insnLog = std::fopen(insnLogPath.c_str(), "w"))) {
    std::fprintf(stderr, "cannot write %s\n", insnLogPath.c_str());
    return 1;
  }

  auto* top = new Vp2vit_top{ctx};
#if VM_TRACE
  const std::string tracePath = argValue("trace", "");
  const uint64_t traceFrom = std::strtoull(argValue("trace-from", "0").c_str(), nullptr, 10);
  const uint64_t traceTo = std::strtoull(argValue("trace-to", "18446744073709551615").c_str(), nullptr, 10);
  VerilatedFstC* trace = nullptr;
  if (!tracePath.empty()) {
    ctx->traceEverOn(true);
    trace = new VerilatedFstC;
    top->trace(trace, 99);
    trace->open(tracePath.c_str());
  }
  auto dump = [&](uint64_t cycle, int half) {
    if (trace && cycle >= traceFrom && cycle <= traceTo) trace->dump(2 * cycle + half);
  };
#else
  auto dump = [](uint64_t, int) {};
#endif
  std::deque<Pending> reads;
  uint64_t cycle = 0;
  int status = 3;
  auto nextRandom = [&rng]() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };

  top->rst = 1;
  top->clk = 0;
  top->mem_ready = 0;
  top->mem_rvalid = 0;
  for (int i = 0; i < 4; i++) {
    top->clk = 0;
    top->eval();
    top->clk = 1;
    top->eval();
  }
  top->rst = 0;
  uint32_t insnIndex = top->insn_index;

  while (cycle < maxCycles) {
    top->clk = 0;
    top->mem_ready = stall == 0 || (nextRandom() % 100) >= stall;
    const bool respond = !reads.empty() && reads.front().due <= cycle;
    top->mem_rvalid = respond;
    if (respond) putWord(top->mem_rdata, &mem[size_t(reads.front().addr) * kBusBytes], kBusBytes);
    top->eval();

    const bool accepted = top->mem_req && top->mem_ready;
    const uint32_t addr = top->mem_addr;
    const bool write = top->mem_we;
    if (accepted && addr >= words) {
      std::fprintf(stderr, "memory %s at word %u beyond the image (%llu words) at cycle %llu\n",
                   write ? "write" : "read", addr, (unsigned long long)words, (unsigned long long)cycle);
      status = 4;
      break;
    }
    if (accepted && write) getWord(top->mem_wdata, &mem[size_t(addr) * kBusBytes], kBusBytes);
    dump(cycle, 0);

    top->clk = 1;
    top->eval();
    dump(cycle, 1);
    cycle++;
    if (insnLog && top->insn_index != insnIndex) {
      std::fprintf(insnLog, "%llu\n", (unsigned long long)cycle);
      insnIndex = top->insn_index;
    }
    if (respond) reads.pop_front();
    if (accepted && !write) reads.push_back(Pending{cycle + latency - 1, addr});
    if (top->done) {
      status = 0;
      break;
    }
    if (top->trap) {
      status = 2;
      break;
    }
  }

  top->final();
  if (insnLog) {
    // HALT moves no further: its end is the last cycle
    std::fprintf(insnLog, "%llu\n", (unsigned long long)cycle);
    std::fclose(insnLog);
  }
#if VM_TRACE
  if (trace) trace->close();
#endif
  if (!writeImage(outPath, mem)) return 1;
  std::printf("{\"cycles\": %llu, \"status\": %d}\n", (unsigned long long)cycle, status);
  delete top;
  delete ctx;
  return status;
}
