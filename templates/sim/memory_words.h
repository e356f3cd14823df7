// Memory words, image files and plusargs shared by the Verilator harnesses (harness.cpp,
// axi_harness.cpp): a bus word of any width (IData, QData or VlWide<N>) to and from little-endian bytes.
#pragma once
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

inline void putWord(IData& dst, const uint8_t* src, int n) {
  dst = 0;
  for (int i = 0; i < n && i < 4; i++) dst |= IData(src[i]) << (8 * i);
}
inline void putWord(QData& dst, const uint8_t* src, int n) {
  dst = 0;
  for (int i = 0; i < n && i < 8; i++) dst |= QData(src[i]) << (8 * i);
}
template <std::size_t W>
void putWord(VlWide<W>& dst, const uint8_t* src, int n) {
  for (std::size_t w = 0; w < W; w++) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
      int k = int(w) * 4 + i;
      if (k < n) v |= uint32_t(src[k]) << (8 * i);
    }
    dst[w] = v;
  }
}
inline void getWord(const IData& src, uint8_t* dst, int n) {
  for (int i = 0; i < n && i < 4; i++) dst[i] = uint8_t(src >> (8 * i));
}
inline void getWord(const QData& src, uint8_t* dst, int n) {
  for (int i = 0; i < n && i < 8; i++) dst[i] = uint8_t(src >> (8 * i));
}
template <std::size_t W>
void getWord(const VlWide<W>& src, uint8_t* dst, int n) {
  for (int k = 0; k < n && k < int(4 * W); k++) dst[k] = uint8_t(src[k / 4] >> (8 * (k % 4)));
}

// The value of +name=value, or `fallback` (empty when null) without it.
inline std::string argValue(const char* name, const char* fallback) {
  const char* v = Verilated::commandArgsPlusMatch(name);
  std::string prefix = std::string("+") + name + "=";
  if (v && std::strncmp(v, prefix.c_str(), prefix.size()) == 0) return std::string(v + prefix.size());
  return fallback ? std::string(fallback) : std::string();
}

// Reads the whole memory image at `path` into `mem`; false (with the reason on stderr) when it cannot.
inline bool readImage(const std::string& path, std::vector<uint8_t>& mem) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "cannot open memory image %s\n", path.c_str());
    return false;
  }
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  mem.resize(size < 0 ? 0 : size_t(size));
  const bool ok = size >= 0 && (mem.empty() || std::fread(mem.data(), 1, mem.size(), f) == mem.size());
  std::fclose(f);
  if (!ok) std::fprintf(stderr, "cannot read memory image %s\n", path.c_str());
  return ok;
}

// Writes the memory back to `path`; false (with the reason on stderr) when it cannot.
inline bool writeImage(const std::string& path, const std::vector<uint8_t>& mem) {
  FILE* f = std::fopen(path.c_str(), "wb");
  bool ok = f && std::fwrite(mem.data(), 1, mem.size(), f) == mem.size();
  if (f && std::fclose(f) != 0) ok = false;
  if (!ok) std::fprintf(stderr, "cannot write %s\n", path.c_str());
  return ok;
}
