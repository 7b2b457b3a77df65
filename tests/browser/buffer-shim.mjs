// NSFWJS imports Buffer only to decode its bundled base64 models; the tests load model URLs.
export const Buffer = {
  from() {
    throw new Error("Buffer is not available: load NSFWJS models from a URL");
  },
};
