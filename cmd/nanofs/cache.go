package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/tfs"
)

func init() { verbs = append(verbs, newCacheCmd) }

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Manage the content cache",
	}
	var dir, maxSize string
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove leftovers of killed runs and, with --max-size, the least recently used entries",
		Long: `Remove the temporary files that runs killed while writing left in the cache
(every run removes them too) and, with --max-size, cached layers, chunks and
blobs, least recently used first, until the cache holds at most SIZE bytes.
What is removed is fetched again when an image needs it.`,
		Example: `  nanofs cache prune
  nanofs cache prune --max-size 2G`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			limit := int64(-1)
			if maxSize != "" {
				var err error
				if limit, err = tfs.ParseSize(maxSize); err != nil {
					return fmt.Errorf("--max-size: %w", err)
				}
			}
			res, err := lazy.PruneCache(dir, limit)
			if res != nil {
				g.logf("removed %d temporary files (%s) and %d entries (%s); %s left",
					res.TempFiles, byteCount(res.TempBytes), res.Entries, byteCount(res.Bytes), byteCount(res.Remaining))
			}
			return err
		},
	}
	prune.Flags().StringVar(&dir, "cache-dir", "", "content cache directory (default $XDG_CACHE_HOME/nanofs, i.e. ~/.cache/nanofs)")
	prune.Flags().StringVar(&maxSize, "max-size", "", "remove least recently used entries until the cache holds at most this much, e.g. 2G")
	cmd.AddCommand(prune)

	var verifyDir string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Hash every cached chunk, TOC, blob and layer again and remove the damaged ones",
		Long: `Builds trust a cached eStargz chunk or layer once it is stored (it was checked
against its digest before), reading it after a size check only. verify hashes
every entry of the cache again (a layer read whole against the digests of its
index) and removes those whose content no longer matches; the next build
fetches them again. It exits with an error when it found damage.`,
		Example: `  nanofs cache verify`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := lazy.VerifyCache(verifyDir)
			if res != nil {
				for _, e := range res.Corrupt {
					g.logf("damaged, removed: %s", e)
				}
				g.logf("checked %d entries (%s): %d damaged", res.Entries, byteCount(res.Bytes), len(res.Corrupt))
				if err == nil && len(res.Corrupt) > 0 {
					err = fmt.Errorf("%d damaged cache entries removed; they are fetched again when needed", len(res.Corrupt))
				}
			}
			return err
		},
	}
	verify.Flags().StringVar(&verifyDir, "cache-dir", "", "content cache directory (default $XDG_CACHE_HOME/nanofs, i.e. ~/.cache/nanofs)")
	cmd.AddCommand(verify)
	return cmd
}
