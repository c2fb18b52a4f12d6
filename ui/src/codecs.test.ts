import { describe, expect, it } from "vitest";
import { codecRows, moveCodec, toggleCodec } from "./codecs";

describe("the codec list", () => {
  it("shows the enabled codecs in order, then the others", () => {
    expect(codecRows("pcma, PCMU,speex,pcma")).toEqual([
      { codec: "pcma", enabled: true },
      { codec: "pcmu", enabled: true },
      { codec: "opus", enabled: false },
      { codec: "g722", enabled: false },
    ]);
  });

  it("switches codecs on at the end and off, never the last one", () => {
    expect(toggleCodec("pcmu", "opus", true)).toBe("pcmu,opus");
    expect(toggleCodec("pcmu,opus", "pcmu", false)).toBe("opus");
    expect(toggleCodec("opus", "opus", false)).toBeNull();
  });

  it("moves an enabled codec up or down within the enabled ones", () => {
    expect(moveCodec("opus,g722,pcmu", "pcmu", -1)).toBe("opus,pcmu,g722");
    expect(moveCodec("opus,g722,pcmu", "opus", 1)).toBe("g722,opus,pcmu");
    expect(moveCodec("opus,g722", "opus", -1)).toBeNull();
    expect(moveCodec("opus,g722", "g722", 1)).toBeNull();
    expect(moveCodec("opus,g722", "pcma", -1)).toBeNull();
  });
});
