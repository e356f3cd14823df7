// Verilator harness for p2vit_axi_top: an AXI4 slave memory and an AXI4-Lite master that runs one
// program the way software on the PS would (set BASE, START, poll STATUS, read CYCLES).
//
//   Vaxi +image=<file> +out=<file> +base=<byte address> [+latency=N] [+stall=P] [+seed=S] [+max-cycles=N]
//
// The image is the memory from word 0 at byte address `base`. The slave accepts AR, AW and W each
// with a seeded random refusal (P percent), answers reads in order `latency` cycles after AR and
// writes `latency` cycles after both AW and W. It checks every transaction is one full-width beat
// inside the image. At the end it prints one JSON line and writes the memory to +out.
// Exit codes: 0 done, 2 trap, 3 cycle limit, 4 bad AXI transaction, 1 bad arguments.
#include "Vp2vit_axi_top.h"
#include "verilated.h"
#include "memory_words.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

constexpr int kBusBytes = int(sizeof(Vp2vit_axi_top::m_axi_mem_rdata));

struct Due {
  uint64_t due;
  uint64_t word;
};

Vp2vit_axi_top* top;
std::vector<uint8_t> mem;
uint64_t base, words, latency, cycle = 0, maxCycles;
unsigned stall;
uint64_t rng;
std::deque<Due> reads, writesDone;
std::deque<uint64_t> awq;
std::deque<std::vector<uint8_t>> wq;
bool liteAw = false, liteW = false, liteAr = false;
int badTransaction = 0;

uint64_t nextRandom() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
bool ready() { return stall == 0 || (nextRandom() % 100) >= stall; }

// the word an AXI address names, or a failure when it is not a full-width beat inside the image
uint64_t wordOf(uint64_t addr, unsigned len, unsigned size, const char* what) {
  if (len != 0 || (1u << size) != unsigned(kBusBytes) || addr < base || (addr - base) % kBusBytes != 0 ||
      (addr - base) / kBusBytes >= words) {
    std::fprintf(stderr, "bad %s at cycle %llu: addr 0x%llx len %u size %u\n", what, (unsigned long long)cycle,
                 (unsigned long long)addr, len, size);
    badTransaction = 1;
    return 0;
  }
  return (addr - base) / kBusBytes;
}

// one aclk cycle: the slave's outputs, then the handshakes at the rising edge
void step() {
  top->aclk = 0;
  top->m_axi_mem_arready = ready();
  top->m_axi_mem_awready = ready();
  top->m_axi_mem_wready = ready();
  const bool r = !reads.empty() && reads.front().due <= cycle;
  top->m_axi_mem_rvalid = r;
  top->m_axi_mem_rresp = 0;
  top->m_axi_mem_rlast = 1;
  if (r) putWord(top->m_axi_mem_rdata, &mem[reads.front().word * kBusBytes], kBusBytes);
  const bool b = !writesDone.empty() && writesDone.front().due <= cycle;
  top->m_axi_mem_bvalid = b;
  top->m_axi_mem_bresp = 0;
  top->eval();

  if (r && !top->m_axi_mem_rready) badTransaction = 1;
  if (top->m_axi_mem_arvalid && top->m_axi_mem_arready)
    reads.push_back(Due{cycle + latency, wordOf(top->m_axi_mem_araddr, top->m_axi_mem_arlen, top->m_axi_mem_arsize, "read")});
  if (top->m_axi_mem_awvalid && top->m_axi_mem_awready)
    awq.push_back(wordOf(top->m_axi_mem_awaddr, top->m_axi_mem_awlen, top->m_axi_mem_awsize, "write"));
  if (top->m_axi_mem_wvalid && top->m_axi_mem_wready) {
    std::vector<uint8_t> data(kBusBytes);
    getWord(top->m_axi_mem_wdata, data.data(), kBusBytes);
    if (!top->m_axi_mem_wlast || top->m_axi_mem_wstrb == 0) badTransaction = 1;
    wq.push_back(data);
  }
  liteAw = top->s_axi_ctrl_awvalid && top->s_axi_ctrl_awready;
  liteW = top->s_axi_ctrl_wvalid && top->s_axi_ctrl_wready;
  liteAr = top->s_axi_ctrl_arvalid && top->s_axi_ctrl_arready;
  const bool bDone = b && top->m_axi_mem_bready;

  top->aclk = 1;
  top->eval();
  cycle++;
  if (r) reads.pop_front();
  if (bDone) writesDone.pop_front();
  while (!awq.empty() && !wq.empty()) {
    std::memcpy(&mem[awq.front() * kBusBytes], wq.front().data(), kBusBytes);
    writesDone.push_back(Due{cycle + latency - 1, awq.front()});
    awq.pop_front();
    wq.pop_front();
  }
}

void liteWrite(uint32_t addr, uint32_t data) {
  top->s_axi_ctrl_awaddr = addr;
  top->s_axi_ctrl_wdata = data;
  top->s_axi_ctrl_wstrb = 0xf;
  top->s_axi_ctrl_awvalid = 1;
  top->s_axi_ctrl_wvalid = 1;
  top->s_axi_ctrl_bready = 1;
  bool aw = false, w = false;
  while (!(aw && w)) {
    step();
    if (liteAw) aw = true, top->s_axi_ctrl_awvalid = 0;
    if (liteW) w = true, top->s_axi_ctrl_wvalid = 0;
  }
  while (!top->s_axi_ctrl_bvalid) step();
  step();  // bready is high: the response is taken
}

uint32_t liteRead(uint32_t addr) {
  top->s_axi_ctrl_araddr = addr;
  top->s_axi_ctrl_arvalid = 1;
  top->s_axi_ctrl_rready = 1;
  do step(); while (!liteAr);
  top->s_axi_ctrl_arvalid = 0;
  while (!top->s_axi_ctrl_rvalid) step();
  const uint32_t v = top->s_axi_ctrl_rdata;
  step();
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  auto* ctx = new VerilatedContext;
  ctx->commandArgs(argc, argv);
  const std::string imagePath = argValue("image", nullptr);
  const std::string outPath = argValue("out", nullptr);
  base = std::strtoull(argValue("base", "0").c_str(), nullptr, 0);
  latency = std::strtoull(argValue("latency", "3").c_str(), nullptr, 10);
  stall = unsigned(std::strtoul(argValue("stall", "0").c_str(), nullptr, 10));
  rng = std::strtoull(argValue("seed", "1").c_str(), nullptr, 10) * 2654435761ull + 1;
  maxCycles = std::strtoull(argValue("max-cycles", "100000000").c_str(), nullptr, 10);
  if (imagePath.empty() || outPath.empty() || latency < 1 || stall > 90) {
    std::fprintf(stderr, "usage: Vaxi +image=<file> +out=<file> +base=<addr> [+latency=N>=1] [+stall=0..90] [+seed=S]\n");
    return 1;
  }
  if (!readImage(imagePath, mem)) return 1;
  words = mem.size() / kBusBytes;

  top = new Vp2vit_axi_top{ctx};
  top->aresetn = 0;
  for (int i = 0; i < 4; i++) step();
  top->aresetn = 1;
  step();

  // registers: CONTROL 0x00, STATUS 0x04, CYCLES 0x08/0x0c, BASE 0x10/0x14, IDENT 0x18
  const uint32_t ident = liteRead(0x18);
  liteWrite(0x10, uint32_t(base));
  liteWrite(0x14, uint32_t(base >> 32));
  const uint64_t baseBack = liteRead(0x10) | (uint64_t(liteRead(0x14)) << 32);
  const uint32_t idle = liteRead(0x04);
  liteWrite(0x00, 1);  // START
  const uint32_t running = liteRead(0x04);
  uint32_t status = running;
  while (!(status & 3) && cycle < maxCycles && !badTransaction) status = liteRead(0x04);
  const uint64_t cycles = liteRead(0x08) | (uint64_t(liteRead(0x0c)) << 32);
  // the responses still in flight at done: busy falls once they are back
  uint32_t settled = liteRead(0x04);
  for (int i = 0; i < 100 && (settled & 4); i++) settled = liteRead(0x04);
  const bool irq = top->irq;

  top->final();
  if (!writeImage(outPath, mem)) return 1;
  std::printf("{\"cycles\": %llu, \"axiCycles\": %llu, \"ident\": %u, \"base\": %llu, \"idleStatus\": %u, \"runningStatus\": %u, \"status\": %u, \"settledStatus\": %u, \"irq\": %d}\n",
              (unsigned long long)cycles, (unsigned long long)cycle, ident, (unsigned long long)baseBack, idle, running, status,
              settled, irq ? 1 : 0);
  delete top;
  delete ctx;
  if (badTransaction) return 4;
  if (status & 2) return 2;
  return (status & 1) ? 0 : 3;
}
