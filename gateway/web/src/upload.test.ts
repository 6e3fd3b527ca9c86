import { describe, expect, it } from "vitest";
import { putWithProgress } from "./upload";

class FakeXhr {
  upload: { onprogress?: (e: any) => void } = {};
  onload?: () => void;
  onerror?: () => void;
  onabort?: () => void;
  status = 0;
  responseText = "";
  opened: string[] = [];
  open(method: string, url: string) {
    this.opened = [method, url];
  }
  send(body: Blob) {
    this.upload.onprogress?.({ loaded: 5, total: body.size, lengthComputable: true });
    this.status = 200;
    this.onload?.();
  }
  abort() {
    this.onabort?.();
  }
}

describe("putWithProgress", () => {
  it("PUTs to the presigned URL and reports progress to 100 %", async () => {
    const xhr = new FakeXhr();
    const seen: [number, number][] = [];
    await putWithProgress("http://s3/x?sig", new Blob(["0123456789"]), (l, t) => seen.push([l, t]), undefined, () => xhr as any);
    expect(xhr.opened).toEqual(["PUT", "http://s3/x?sig"]);
    expect(seen).toEqual([[5, 10], [10, 10]]);
  });

  it("rejects with the storage's status", async () => {
    const xhr = new FakeXhr();
    xhr.send = function () {
      this.status = 403;
      this.responseText = "SignatureDoesNotMatch";
      this.onload?.();
    };
    await expect(putWithProgress("u", new Blob(["x"]), () => {}, undefined, () => xhr as any)).rejects.toThrow(/403 SignatureDoesNotMatch/);
  });
});
