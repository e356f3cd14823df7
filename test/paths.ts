/** Paths shared by the tests: the real data beside the repository, and a scratch cache. */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const SHARED_DATA = resolve(REPO, "..", "shared", "data");
export const MNIST_DIR = join(SHARED_DATA, "mnist");
export const VIT4MNIST_DIR = join(SHARED_DATA, "models", "vit4mnist");
export const HAS_SHARED_DATA = existsSync(join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")) && existsSync(join(VIT4MNIST_DIR, "model.safetensors"));
export const CIFAR_DIR = join(SHARED_DATA, "cifar10");
export const CIFAR_MODEL_DIR = join(SHARED_DATA, "models", "vit-cifar10");
export const HAS_CIFAR = existsSync(CIFAR_DIR) && existsSync(join(CIFAR_MODEL_DIR, "model.safetensors"));
