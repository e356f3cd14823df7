// Memory words and plusargs shared by the Verilator harnesses (harness.cpp, axi_harness.cpp): a
// bus word of any width (IData, QData or VlWide<N>) to and from little-endian bytes.
#pragma once
#include "verilated.h"

#include <cstdint>
#include <cstring>
#include <string>

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
