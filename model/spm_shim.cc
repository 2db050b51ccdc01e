// spm_shim.cc — the C interface of spm.h over Debian's libsentencepiece
// (sentencepiece::SentencePieceProcessor, C++).  The only C++ file of the
// `granattn` executable, compiled only with -Dsentencepiece found
// (model/meson.build).  Every entry point catches every exception: none
// crosses into the C side; a failure is -1 / NULL with the message in
// gu_error() (util.h).
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "spm.h"

extern "C" {
#include "util.h"
}

struct gm_spm {
    sentencepiece::SentencePieceProcessor proc;
    std::vector<int> ids;  // scratch of gm_spm_encode / gm_spm_decode
    std::string text;
    int vocab = 0;
};

extern "C" int gm_spm_in_process(void) { return 1; }

extern "C" gm_spm *gm_spm_load(const char *path)
{
    gm_spm *sp = nullptr;
    try {
        sp = new gm_spm;
        const auto st = sp->proc.Load(path);
        if (!st.ok()) {
            gu_fail("%s: cannot load the SentencePiece model: %s", path, st.ToString().c_str());
            delete sp;
            return nullptr;
        }
        sp->vocab = sp->proc.GetPieceSize();
        if (sp->vocab <= 0) {
            gu_fail("%s: SentencePiece model without pieces", path);
            delete sp;
            return nullptr;
        }
        return sp;
    } catch (const std::bad_alloc &) {
        gu_fail("%s: out of memory loading the SentencePiece model", path);
    } catch (const std::exception &e) {
        gu_fail("%s: cannot load the SentencePiece model: %s", path, e.what());
    } catch (...) {
        gu_fail("%s: cannot load the SentencePiece model (unknown exception)", path);
    }
    delete sp;
    return nullptr;
}

extern "C" void gm_spm_free(gm_spm *sp)
{
    try {
        delete sp;
    } catch (...) {  // destructors do not throw; never let one escape
    }
}

extern "C" int gm_spm_vocab(const gm_spm *sp) { return sp ? sp->vocab : 0; }

extern "C" int gm_spm_encode(gm_spm *sp, const char *text, size_t len, int32_t **ids,
                             size_t *cap, size_t *n)
{
    *n = 0;
    try {
        const auto st = sp->proc.Encode(std::string_view(text, len), &sp->ids);
        if (!st.ok())
            return gu_fail("SentencePiece encode: %s", st.ToString().c_str());
        const size_t k = sp->ids.size();
        if (k > *cap) {
            size_t c = *cap ? *cap : 64;
            while (c < k)
                c *= 2;
            void *p = std::realloc(*ids, c * sizeof(int32_t));
            if (!p)
                return gu_fail("SentencePiece encode: out of memory (%zu ids)", k);
            *ids = static_cast<int32_t *>(p);
            *cap = c;
        }
        for (size_t i = 0; i < k; i++)
            (*ids)[i] = static_cast<int32_t>(sp->ids[i]);
        *n = k;
        return 0;
    } catch (const std::bad_alloc &) {
        return gu_fail("SentencePiece encode: out of memory");
    } catch (const std::exception &e) {
        return gu_fail("SentencePiece encode: %s", e.what());
    } catch (...) {
        return gu_fail("SentencePiece encode: unknown exception");
    }
}

extern "C" int gm_spm_decode(gm_spm *sp, const int32_t *ids, size_t n, char **text_out,
                             size_t *len_out)
{
    *text_out = nullptr;
    if (len_out)
        *len_out = 0;
    try {
        sp->ids.resize(n);
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= sp->vocab)
                return gu_fail("SentencePiece decode: token id %d outside the vocabulary [0, %d)",
                               static_cast<int>(ids[i]), sp->vocab);
            sp->ids[i] = ids[i];
        }
        const auto st = sp->proc.Decode(sp->ids, &sp->text);
        if (!st.ok())
            return gu_fail("SentencePiece decode: %s", st.ToString().c_str());
        char *s = static_cast<char *>(std::malloc(sp->text.size() + 1));
        if (!s)
            return gu_fail("SentencePiece decode: out of memory");
        std::memcpy(s, sp->text.data(), sp->text.size());
        s[sp->text.size()] = '\0';
        *text_out = s;
        if (len_out)
            *len_out = sp->text.size();
        return 0;
    } catch (const std::bad_alloc &) {
        return gu_fail("SentencePiece decode: out of memory");
    } catch (const std::exception &e) {
        return gu_fail("SentencePiece decode: %s", e.what());
    } catch (...) {
        return gu_fail("SentencePiece decode: unknown exception");
    }
}
