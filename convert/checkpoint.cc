#include "convert/checkpoint.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_set>

#include <fmt/format.h>

#include "convert/json_text.h"

namespace bitsmith {

namespace fs = std::filesystem;

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Regular files (symlinks followed) directly inside `dir`, sorted by name.
std::vector<std::string> ListFiles(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (fs::is_regular_file(it->path(), ec2)) names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status AddSafetensorsFile(Checkpoint& ck, const std::string& path) {
  BITSMITH_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensorsFile(path));
  const int index = static_cast<int>(ck.files.size());
  ck.files.push_back(path);
  ck.file_sizes.push_back(f.file_size);
  for (TensorInfo& t : f.tensors) {
    t.file_index = index;
    ck.tensors.push_back(std::move(t));
  }
  std::vector<TensorInfo>().swap(f.tensors);  // free it: the shard keeps its header only
  ck.shards.push_back(std::move(f));
  return Status::Ok();
}

Result<Checkpoint> OpenSharded(const std::string& given, const fs::path& index_path) {
  Checkpoint ck;
  ck.format = FileFormat::kSafetensors;
  ck.path = given;
  ck.dir = index_path.parent_path().string();
  ck.index_path = index_path.string();
  // The weight_map as views into the index text (no string per entry).
  BITSMITH_ASSIGN_OR_RETURN(SafetensorsIndexView view, ReadSafetensorsIndexView(ck.index_path));
  const auto& weight_map = view.weight_map;
  if (weight_map.empty())
    return MakeError(ErrorKind::kBadInput, "{}: weight_map is empty", ck.index_path);

  // 1. Open every shard the index names (sorted by file name). Entries of one
  //    shard mostly follow each other, so the distinct names are collected
  //    with a one-entry cache in front of a small hash set.
  std::vector<std::string_view> files;
  {
    std::unordered_set<std::string_view> seen;
    std::string_view last;
    for (const auto& [tensor, file] : weight_map) {
      if (file == last && !files.empty()) continue;
      last = file;
      if (seen.insert(file).second) files.push_back(file);
    }
  }
  std::sort(files.begin(), files.end());
  ck.tensors.reserve(weight_map.size());
  for (std::string_view name : files) {
    const fs::path p = index_path.parent_path() / name;
    std::error_code ec;
    if (!fs::exists(p, ec))
      return MakeError(ErrorKind::kBadInput, "{}: the index names shard '{}', which is missing", ck.index_path,
                       name);
    BITSMITH_RETURN_IF_ERROR(AddSafetensorsFile(ck, p.string()));
  }

  // 2. Cross-check the weight_map against the shards' headers, through the
  //    checkpoint's own name index (built here once; OpenCheckpoint keeps it).
  if (const long dup = ck.BuildIndex(); dup >= 0) {
    const TensorInfo& t = ck.tensors[static_cast<size_t>(dup)];
    const TensorInfo* first = ck.Find(t.name);
    return MakeError(ErrorKind::kBadInput, "tensor '{}' is in two shards: {} and {}", t.name,
                     ck.files[first->file_index], ck.files[t.file_index]);
  }
  // Shard name -> index in ck.files (`files` was opened in this order), with
  // the same one-entry cache.
  std::unordered_map<std::string_view, int> shard_index;
  for (size_t k = 0; k < files.size(); ++k) shard_index.emplace(files[k], static_cast<int>(k));
  std::vector<uint8_t> listed(ck.tensors.size(), 0);
  std::string_view last_file;
  int last_index = -1;
  for (const auto& [tensor, file] : weight_map) {
    const TensorInfo* t = ck.Find(tensor);
    if (t == nullptr)
      return MakeError(ErrorKind::kBadInput, "{}: the index maps tensor '{}' to {}, which has no such tensor",
                       ck.index_path, tensor, file);
    listed[static_cast<size_t>(t - ck.tensors.data())] = 1;
    if (last_index < 0 || file != last_file) {
      last_file = file;
      last_index = shard_index.at(file);
    }
    if (t->file_index != last_index)
      return MakeError(ErrorKind::kBadInput, "{}: the index maps tensor '{}' to {}, but it is in {}",
                       ck.index_path, tensor, file, fs::path(ck.files[t->file_index]).filename().string());
  }
  size_t unlisted = 0;
  std::string first_unlisted;
  for (size_t i = 0; i < ck.tensors.size(); ++i)
    if (!listed[i] && unlisted++ == 0) first_unlisted = ck.tensors[i].name;
  if (unlisted)
    ck.warnings.push_back(fmt::format("{}: {} tensor(s) in the shards are not in the index (first: '{}'); "
                                      "they are included",
                                      ck.index_path, unlisted, first_unlisted));
  SafetensorsIndex& index = view.index;
  if (index.total_size && *index.total_size != ck.tensor_bytes())
    ck.warnings.push_back(fmt::format("{}: metadata.total_size is {} but the shards hold {} bytes of tensors",
                                      ck.index_path, *index.total_size, ck.tensor_bytes()));
  // The weight_map has served: keep the index's metadata only.
  index.weight_map.clear();
  index.weight_map.shrink_to_fit();
  ck.index = std::move(index);
  return ck;
}

Result<Checkpoint> OpenSafetensors(const std::string& given, const std::string& file) {
  Checkpoint ck;
  ck.format = FileFormat::kSafetensors;
  ck.path = given;
  ck.dir = fs::path(file).parent_path().string();
  BITSMITH_RETURN_IF_ERROR(AddSafetensorsFile(ck, file));
  return ck;
}

Result<Checkpoint> OpenGguf(const std::string& given, const std::string& file) {
  Checkpoint ck;
  ck.format = FileFormat::kGguf;
  ck.path = given;
  ck.dir = fs::path(file).parent_path().string();
  BITSMITH_ASSIGN_OR_RETURN(ck.gguf, ReadGgufSplits(file));
  for (size_t i = 0; i < ck.gguf.size(); ++i) {
    ck.files.push_back(ck.gguf[i].path);
    ck.file_sizes.push_back(ck.gguf[i].file_size);
    for (TensorInfo& t : ck.gguf[i].Tensors(static_cast<int>(i))) ck.tensors.push_back(std::move(t));
    if (!ck.gguf[i].canonical_layout)
      ck.warnings.push_back(fmt::format("{}: tensor data is not laid out back to back as ggml writes it "
                                        "(llama.cpp will refuse this file; a rewrite fixes the layout)",
                                        ck.gguf[i].path));
  }
  return ck;
}

bool HasGgufMagic(const std::string& path) {
  auto in = InputFile::Open(path);
  if (!in.ok() || in->size() < 4) return false;
  std::array<uint8_t, 4> m{};
  if (!in->ReadAt(0, m).ok()) return false;
  return m[0] == 'G' && m[1] == 'G' && m[2] == 'U' && m[3] == 'F';
}

Result<Checkpoint> OpenFile(const std::string& given, const std::string& file) {
  if (EndsWith(file, ".index.json") || EndsWith(file, ".json")) return OpenSharded(given, fs::path(file));
  if (EndsWith(file, ".gguf") || HasGgufMagic(file)) return OpenGguf(given, file);
  return OpenSafetensors(given, file);
}

Result<Checkpoint> OpenDirectory(const std::string& given) {
  const fs::path dir(given);
  const std::vector<std::string> names = ListFiles(dir);
  auto has = [&](std::string_view n) { return std::binary_search(names.begin(), names.end(), std::string(n)); };
  std::vector<std::string> indexes, st, gguf;
  for (const std::string& n : names) {
    if (n.empty() || n[0] == '.') continue;
    if (EndsWith(n, ".safetensors.index.json")) indexes.push_back(n);
    else if (EndsWith(n, ".safetensors")) st.push_back(n);
    else if (EndsWith(n, ".gguf")) gguf.push_back(n);
  }
  // 1. Which files are the model: an index, model.safetensors, a sole
  //    .safetensors file, or a sole GGUF model (one file or one split set).
  Result<Checkpoint> ck = Error{ErrorKind::kInternal, ""};
  if (has(kSafetensorsIndexName)) {
    ck = OpenSharded(given, dir / std::string(kSafetensorsIndexName));
  } else if (indexes.size() == 1) {
    ck = OpenSharded(given, dir / indexes[0]);
  } else if (indexes.size() > 1) {
    return MakeError(ErrorKind::kBadInput, "{}: several safetensors indexes ({}); name the one to open", given,
                     fmt::join(indexes, ", "));
  } else if (has("model.safetensors")) {
    ck = OpenSafetensors(given, (dir / "model.safetensors").string());
  } else if (st.size() == 1) {
    ck = OpenSafetensors(given, (dir / st[0]).string());
  } else if (st.size() > 1) {
    return MakeError(ErrorKind::kBadInput,
                     "{}: {} .safetensors files and no model.safetensors.index.json; name the file to open "
                     "({})",
                     given, st.size(), fmt::join(st, ", "));
  } else if (!gguf.empty()) {
    std::set<std::string> sets;
    for (const std::string& g : gguf) {
      auto s = ParseGgufSplitPath(g);
      sets.insert(s ? s->prefix : g);
    }
    if (sets.size() > 1)
      return MakeError(ErrorKind::kBadInput, "{}: several GGUF models ({}); name the file to open", given,
                       fmt::join(gguf, ", "));
    ck = OpenGguf(given, (dir / gguf[0]).string());
  } else {
    return MakeError(ErrorKind::kBadInput,
                     "{}: no model found (no model.safetensors.index.json, .safetensors or .gguf file)", given);
  }
  if (!ck.ok()) return ck;

  // 2. Everything else that is not a weight file is an extra file to copy.
  std::unordered_set<std::string> used;
  for (const std::string& f : ck->files) used.insert(fs::path(f).filename().string());
  if (!ck->index_path.empty()) used.insert(fs::path(ck->index_path).filename().string());
  for (const std::string& n : names) {
    if (n.empty() || n[0] == '.' || used.count(n) || IsWeightFileName(n)) continue;
    ck->extra_files.push_back((dir / n).string());
  }
  return ck;
}

}  // namespace

bool IsWeightFileName(std::string_view name) {
  static constexpr std::string_view kExts[] = {".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt",
                                               ".h5", ".msgpack", ".onnx", ".index.json"};
  for (std::string_view e : kExts)
    if (EndsWith(name, e)) return true;
  return false;
}

const TensorInfo* Checkpoint::Find(std::string_view name) const {
  const long i = names_.Find(tensors, name);
  return i < 0 ? nullptr : &tensors[static_cast<size_t>(i)];
}

long Checkpoint::BuildIndex() { return names_.Build(tensors); }

uint64_t Checkpoint::params() const {
  uint64_t n = 0;
  for (const TensorInfo& t : tensors) n += t.elements();
  return n;
}

uint64_t Checkpoint::tensor_bytes() const {
  uint64_t n = 0;
  for (const TensorInfo& t : tensors) n += t.nbytes;
  return n;
}

uint64_t Checkpoint::disk_bytes() const {
  uint64_t n = 0;
  for (uint64_t s : file_sizes) n += s;
  return n;
}

std::vector<std::pair<std::string, std::string>> Checkpoint::MetadataSummary(size_t max_chars) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (format == FileFormat::kGguf) {
    if (!gguf.empty())
      for (const GgufKV& kv : gguf[0].kv) out.emplace_back(PrintableText(kv.key), GgufValueSummary(kv.value, max_chars));
    return out;
  }
  if (!shards.empty())
    for (const auto& [k, v] : shards[0].metadata) out.emplace_back(PrintableText(k), PrintableText(v, max_chars));
  if (index)
    for (const auto& [k, v] : index->metadata) out.emplace_back("index." + PrintableText(k), PrintableText(v, max_chars));
  return out;
}

namespace {

// The first split of the set `convert OUT.gguf --split-max-size` writes for the
// path OUT.gguf (OUT-00001-of-NNNNN.gguf beside it), when there is exactly one
// such set; empty otherwise.
Result<std::string> SplitSetOf(const std::string& path) {
  if (!EndsWith(path, ".gguf")) return std::string();
  const fs::path p(path);
  const std::string stem = p.filename().string().substr(0, p.filename().string().size() - 5);
  std::vector<std::string> firsts;
  for (const std::string& n : ListFiles(p.has_parent_path() ? p.parent_path() : fs::path("."))) {
    const auto s = ParseGgufSplitPath(n);
    if (s && s->prefix == stem && s->index == 0) firsts.push_back(n);
  }
  if (firsts.size() > 1)
    return MakeError(ErrorKind::kBadInput, "{}: no such file, and several GGUF split sets of that name ({}); name "
                     "the first split to open", path, fmt::join(firsts, ", "));
  return firsts.empty() ? std::string() : (p.parent_path() / firsts[0]).string();
}

}  // namespace

Result<Checkpoint> OpenCheckpoint(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    // `convert M OUT.gguf --split-max-size ...` wrote OUT-0000i-of-0000n.gguf:
    // OUT.gguf names that model (verify, info, report take the same OUT).
    BITSMITH_ASSIGN_OR_RETURN(std::string first, SplitSetOf(path));
    if (!first.empty()) return OpenCheckpoint(first);
    return MakeError(ErrorKind::kBadInput, "{}: no such file or directory", path);
  }
  Result<Checkpoint> ck = fs::is_directory(st) ? OpenDirectory(path) : OpenFile(path, path);
  if (!ck.ok()) return ck;
  if (ck->tensors.empty() && ck->format == FileFormat::kSafetensors)
    ck->warnings.push_back(fmt::format("{}: the checkpoint holds no tensors", path));
  if (ck->index_path.empty()) ck->BuildIndex();  // OpenSharded built it for its cross-check
  return ck;
}

}  // namespace bitsmith
