import { chmodSync, writeFileSync } from "node:fs";

/** x86_64 syscall numbers the seccomp tests probe. */
export const SYSCALLS = { add_key: 248, keyctl: 250 } as const;

/**
 * Test support: writes a tiny static x86_64 ELF executable to `path` that makes one raw syscall
 * with every argument zero and exits with the errno it got (0 on success). `add_key(NULL, …)`
 * fails with EFAULT (14) when the kernel runs it and EPERM (1) when seccomp refuses it; no
 * userland tool in a busybox rootfs can make these calls.
 */
export function writeSyscallProbe(path: string, syscall: number): string {
  const code = Buffer.from([
    0xb8, ...u32(syscall), // mov eax, syscall
    0x31, 0xff, 0x31, 0xf6, 0x31, 0xd2, // xor edi, edi; xor esi, esi; xor edx, edx
    0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0, // xor r10d, r10d; xor r8d, r8d
    0x0f, 0x05, // syscall
    0xf7, 0xd8, 0x89, 0xc7, // neg eax; mov edi, eax
    0xb8, ...u32(60), 0x0f, 0x05, // exit(edi)
  ]);
  const base = 0x400000;
  const headers = 64 + 56;
  const elf = Buffer.alloc(64);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // ELF, 64-bit, little-endian, version 1
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BigInt(base + headers), 24); // entry
  elf.writeBigUInt64LE(64n, 32); // program headers right after this header
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  const phdr = Buffer.alloc(56);
  phdr.writeUInt32LE(1, 0); // PT_LOAD
  phdr.writeUInt32LE(5, 4); // R+X
  phdr.writeBigUInt64LE(BigInt(base), 16);
  phdr.writeBigUInt64LE(BigInt(base), 24);
  phdr.writeBigUInt64LE(BigInt(headers + code.byteLength), 32);
  phdr.writeBigUInt64LE(BigInt(headers + code.byteLength), 40);
  phdr.writeBigUInt64LE(0x1000n, 48);
  writeFileSync(path, Buffer.concat([elf, phdr, code]));
  chmodSync(path, 0o755);
  return path;
}

function u32(value: number): number[] {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return [...b];
}
